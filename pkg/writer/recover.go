package writer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// recover brings the directory to a state a writer can continue from and
// returns the segment to append to and the digest the next seal chains
// from. The procedure (docs/FORMAT.md, "Recovery"):
//
//  1. Remove leftover *.seg.tmp files: segments whose creation was
//     interrupted before the rename, so they never held records.
//  2. From the newest segment back to the first sealed one (archives count
//     as sealed), collect the unsealed segments: their writer died.
//  3. Oldest first, walk each with the shared decoder: reserved frames and
//     zero gaps followed by frames become PAD; if there is no END frame,
//     one is written where the data ends; the segment is sealed with
//     FlagRecovered, chained to the previous digest: the file is
//     unmapped and fsynced, then the footer written and fsynced. A
//     segment with a damaged committed frame is left as it is for verify
//     to report: recovery never rewrites a committed record.
//  4. If the newest segment holds no frame at all (it was prepared but
//     never used), it becomes the active segment; otherwise a new one is
//     created after the newest sequence number present.
func (w *Writer) recover() (*seg, [segment.DigestSize]byte, error) {
	var prev [segment.DigestSize]byte
	l, err := segment.List(w.dir)
	if err != nil {
		return nil, prev, err
	}
	removed := false
	for _, t := range l.Temps {
		// Only the writer's own temporaries: compress-finished cleans up
		// its .seg.zst.tmp files itself and may be running now.
		if strings.HasSuffix(t, segment.SegmentExt+segment.TempExt) {
			if err := os.Remove(t); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, prev, fmt.Errorf("remove leftover %s: %w", t, err)
			}
			w.stats.RemovedTemps++
			removed = true
		}
	}
	if removed {
		if err := w.opts.FS.SyncDir(w.dir); err != nil {
			return nil, prev, fmt.Errorf("fsync directory %s: %w", w.dir, err)
		}
	}
	i := len(l.Segments)
	for ; i > 0; i-- {
		e := l.Segments[i-1]
		d, sealed, err := sealedDigest(e.Path)
		if err != nil {
			return nil, prev, err
		}
		if sealed {
			prev = d
			break
		}
	}
	var first *seg
	for j, e := range l.Segments[i:] {
		last := i+j == len(l.Segments)-1
		if e.Archived {
			continue // archives are sealed by construction
		}
		s, err := w.recoverSegment(e.Path, e.Seq, last, &prev)
		if err != nil {
			return nil, prev, err
		}
		if s != nil {
			first = s
		}
	}
	if first == nil {
		if first, err = w.prepare(l.NextSeq()); err != nil {
			return nil, prev, err
		}
	}
	return first, prev, nil
}

// sealedDigest reports whether the segment at path is sealed and its digest.
func sealedDigest(path string) ([segment.DigestSize]byte, bool, error) {
	im, err := segment.OpenImage(path)
	if err != nil {
		return [segment.DigestSize]byte{}, false, fmt.Errorf("recovery: %w", err)
	}
	defer im.Close()
	if im.Check() != nil {
		return [segment.DigestSize]byte{}, false, nil // damaged: treated as unsealed
	}
	f, err := im.Footer()
	if err != nil {
		// No footer, or a footer torn while it was written: reseal.
		return [segment.DigestSize]byte{}, false, nil
	}
	return f.Digest, true, nil
}

// recoverSegment repairs and seals one unsealed segment, or returns it as
// the segment to continue in when it is the newest and empty.
func (w *Writer) recoverSegment(path string, seq uint64, last bool, prev *[segment.DigestSize]byte) (*seg, error) {
	f, err := w.opts.FS.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("recovery: %w", err)
	}
	var hdr [segment.HeaderSize]byte
	h, herr := segment.Header{}, error(nil)
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		herr = err
	} else if h, herr = segment.DecodeHeader(hdr[:]); herr == nil && (h.Size != st.Size() || h.Seq != seq) {
		herr = fmt.Errorf("header (sequence %d, %d bytes) does not match the file", h.Seq, h.Size)
	}
	if herr != nil {
		f.Close()
		w.stats.DamagedSegments++
		w.opts.Logger.Error("recovery: segment left as it is; run auditseg verify", "file", path, "err", segment.WithPath(herr, path))
		return nil, nil
	}
	s, err := mapSegment(f, path, seq, h.Size)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	img := s.data
	var pads [][2]int64
	end, frames, damaged := int64(-1), 0, false
	segment.Walk(img, seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		switch ev.Kind {
		case segment.EvFrame:
			frames++
		case segment.EvReserved, segment.EvGap:
			if ev.Offset+ev.Len == segment.RecordLimit(h.Size) {
				end = ev.Offset // END claimed but not written: finish it
				break
			}
			pads = append(pads, [2]int64{ev.Offset, ev.Len})
		case segment.EvTorn:
			damaged = true
			return false
		case segment.EvTail:
			end = ev.Offset
		case segment.EvEnd:
			frames++
		}
		return true
	})
	if damaged {
		w.stats.DamagedSegments++
		w.opts.Logger.Error("recovery: damaged committed frame; segment left unsealed, run auditseg verify", "file", path)
		return nil, s.release()
	}
	if last && frames == 0 && len(pads) == 0 && end == segment.HeaderSize && h.Size == w.opts.SegmentSize {
		prefault(s.data) // the record area is all zeros (EvTail at HeaderSize)
		s.tail.Store(segment.HeaderSize)
		return s, nil // prepared but never used: continue in it
	}
	for _, p := range pads {
		segment.PutPad(img, seq, p[0], p[1])
	}
	if end >= 0 {
		segment.PutEnd(img, seq, end, now())
	}
	ft, err := segment.SealFooter(img, *prev, segment.FlagRecovered, now())
	if err != nil {
		s.release()
		return nil, fmt.Errorf("recovery: seal %s: %w", path, err)
	}
	// The records and the repairs reach the disk first, the footer after,
	// as when the running writer seals (finish).
	if err := w.seal(s, ft, true, false); err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	*prev = ft.Digest
	w.stats.RecoveredSegments++
	w.stats.RecoveredFrames += len(pads)
	w.opts.Logger.Info("recovered segment", "file", path, "records", ft.Records, "padded", len(pads), "end", ft.EndOffset)
	return nil, nil
}
