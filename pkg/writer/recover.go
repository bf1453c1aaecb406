package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// recover brings the directory to a state a writer can continue from and
// returns the segment to append to and the digest the next seal chains
// from. The procedure is docs/FORMAT.md section 8, whose numbering this
// follows:
//
//  1. Remove leftover *.seg.tmp files (creations interrupted before the
//     rename: they never held records) and fsync the directory.
//  2. Going back from the newest segment, collect every segment after the
//     newest sealed one (archives count as sealed). That one's digest,
//     from its footer (an archive's summary), is where the chain goes on.
//  3. Oldest first, walk each with the shared decoder (one whose name
//     something other than a regular file takes, segment.Entry.NotRegular,
//     is left as it is, never opened). A bad header, a
//     damaged committed frame or a damaged END claim leaves the segment
//     as it is for verify to report (segment.Refusal, which verify and
//     the reader judge with too): recovery never rewrites a committed
//     record, except a torn tail's header (below). The newest, if nothing was ever written past its header
//     (prepared, never used: not an END claim at 64, nor a footer stored
//     over zeros), becomes the active segment, its page cache given back
//     first (remapUnused).
//     Otherwise an END claim becomes END, other reserved frames and zero
//     gaps followed by frames become PAD, a torn tail (the last frame
//     torn by a power cut, nothing intact after it) goes under a PAD,
//     END is written where the data ends if there is none, and the
//     segment is sealed with
//     FlagRecovered, chained to the previous digest: unmapped and
//     fsynced, then the footer written (magic last) and fsynced.
//  4. Unless step 3 kept the newest, a new segment is created after the
//     newest sequence number present.
//  5. (Open, once this returns) LOCK names that segment as the first the
//     writer appends to: a follower waiting at one step 3 left unsealed
//     stops waiting.
//
// maxSeq is the newest segment number Open continues after: 2^32
// rotations below the point where numbers wrap.
const maxSeq = math.MaxUint64 - 1<<32

// recoveryError is err, from recover, as Open returns it: after "open
// DIR: ", unless it names a file of the log first already (a segment
// recovery could not seal, one numbered too high): the directory put
// before it would hide the file to look at; or the directory itself
// first (its fsync), which "open DIR: " would name twice.
func recoveryError(dir string, err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, strings.TrimSuffix(filepath.Join(dir, "x"), "x")) || strings.HasPrefix(msg, dir+": ") {
		return err
	}
	return fmt.Errorf("open %s: %w", dir, err)
}

// recover is that procedure. ctx ends its waits for a lease's break in
// opening segment files, and stops it before each segment it recovers
// and before the segment it creates.
func (w *Writer) recover(ctx context.Context) (*seg, [segment.DigestSize]byte, error) {
	var prev [segment.DigestSize]byte
	l, err := segment.List(w.dir)
	if err != nil {
		return nil, prev, err
	}
	if last, ok := l.Last(); ok && last.Seq > maxSeq {
		// Numbers wrap at 2^64: new segments would sort before the
		// oldest. Only a forged or damaged name comes near.
		return nil, prev, fmt.Errorf("%s: segment number %d is too close to the end of the numbering (2^64) to continue after it: a damaged or foreign file name?", last.Path, last.Seq)
	}
	for _, t := range l.Temps {
		// Only the writer's own temporaries: compress-finished cleans up
		// its .seg.zst.tmp files itself and may be running now.
		if strings.HasSuffix(t, segment.SegmentExt+segment.TempExt) {
			if err := os.Remove(t); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, prev, segment.OpError("remove leftover", t, err)
			}
			w.stats.RemovedTemps++
		}
	}
	// Always, not only after removals: a writer killed between a
	// segment's rename and the directory fsync that follows left a name
	// that is not durable, and step 4 may continue in that very file.
	if err := w.opts.FS.SyncDir(w.dir); err != nil {
		return nil, prev, segment.FileError(w.dir, "fsync the directory", flushError{err})
	}
	i := len(l.Segments)
	for ; i > 0; i-- {
		e := l.Segments[i-1]
		if e.NotRegular != nil {
			continue // not sealed: passed over below
		}
		d, sealed, err := sealedDigest(ctx, e.Path)
		if err != nil && e.Archived && (errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrNoFooter)) {
			// Sealed by construction, but neither its summary nor its
			// content gives the digest (damaged, or an archive made by
			// hand of a segment never sealed): the next seal cannot chain
			// to it. Refusing to open would stop every append for a
			// damage verify reports anyway (a chain finding follows it).
			w.opts.Logger.Warn("the newest sealed segment is an archive without a valid footer; the next segment's chain starts over", "file", e.Path, "err", err)
			w.stats.DamagedSegments++
			d, sealed, err = [segment.DigestSize]byte{}, true, nil
		}
		if err != nil {
			return nil, prev, fmt.Errorf("recovery: %w", err)
		}
		if sealed {
			prev = d
			break
		}
	}
	// The sealed segment files may hold records no flush has covered: a
	// SyncNone writer seals without one, and its list of such segments
	// for Sync died with it. The first Sync of this writer fsyncs them
	// (most are clean by then, and cost an open and an fsync each).
	for _, e := range l.Segments[:i] {
		// compress-finished made archives durable; the open of a FIFO
		// there would block.
		if !e.Archived && e.NotRegular == nil {
			w.lazy.inherited = append(w.lazy.inherited, e.Path)
		}
	}
	var first *seg
	for j, e := range l.Segments[i:] {
		last := i+j == len(l.Segments)-1
		if e.Archived {
			continue // archives are sealed by construction
		}
		if e.NotRegular != nil {
			// Not opened: left as it is, as a segment recovery cannot
			// seal, for verify to report; the segments before it are
			// not the newest, and the next is numbered after it.
			w.stats.DamagedSegments++
			w.opts.Logger.Error("recovery: segment cannot be read, left as it is; run auditseg verify", "file", e.Path, "err", e.NotRegular)
			continue
		}
		if err := stopped(ctx, "recovering", e.Path); err != nil {
			return nil, prev, err
		}
		s, err := w.recoverSegment(ctx, e.Path, e.Seq, last, &prev)
		if err != nil {
			return nil, prev, err
		}
		if s != nil {
			first = s
		}
	}
	if first == nil {
		if err := stopped(ctx, "creating", filepath.Join(w.dir, segment.FileName(l.NextSeq()))); err != nil {
			return nil, prev, err
		}
		if first, err = w.prepare(l.NextSeq()); err != nil {
			return nil, prev, err
		}
	}
	return first, prev, nil
}

// stopped is the error recovery stops with, before doing what to path,
// once ctx is done; nil before.
func stopped(ctx context.Context, what, path string) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("recovery stopped before %s %s: %w", what, path, cancel.Err(ctx))
}

// sealedDigest reports whether the segment at path is sealed and its
// digest, from its header and footer (an archive's summary): nothing else
// of the file is read, so an Open after many archived segments decompresses
// none of them (only the newest, if its summary is damaged: ReadFooter
// then reads the content's footer; FORMAT.md section 8, step 2: zeros
// only when neither gives a valid footer).
func sealedDigest(ctx context.Context, path string) ([segment.DigestSize]byte, bool, error) {
	f, err := segment.SealedFooterContext(ctx, path)
	switch {
	case err == nil:
		return f.Digest, true, nil
	case errors.Is(err, os.ErrNotExist):
		// compress-finished, running beside us, replaced the file by its
		// archive after we listed the directory.
		if alt, ok := segment.ArchivedInstead(path, err); ok {
			return sealedDigest(ctx, alt)
		}
		return f.Digest, false, err
	case !segment.IsArchiveName(filepath.Base(path)) && (errors.Is(err, segment.ErrNoFooter) || errors.Is(err, segment.ErrCorrupt)):
		// No footer, a footer torn while it was written, or a damaged
		// header: treated as unsealed (recovery reseals it, or leaves a
		// damaged one for verify).
		return f.Digest, false, nil
	}
	return f.Digest, false, err
}

// recoverSegment repairs and seals one unsealed segment, or returns it as
// the segment to continue in when it is the newest and empty.
func (w *Writer) recoverSegment(ctx context.Context, path string, seq uint64, last bool, prev *[segment.DigestSize]byte) (*seg, error) {
	// O_NONBLOCK, so that an open conflicting with another process's
	// lease fails rather than waiting in the kernel, where nothing could
	// end the wait; WaitLease waits for the break instead, until ctx is
	// done. (It changes nothing else for a regular file.)
	var f *os.File
	err := segment.WaitLease(ctx, func() (err error) {
		f, err = w.opts.FS.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
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
	// A file shorter than a header is decoded as far as it goes, so the
	// log says "file too short for a segment header (N bytes)", not "EOF".
	if n, err := f.ReadAt(hdr[:], 0); err != nil && !errors.Is(err, io.EOF) {
		herr = err
	} else {
		h, herr = segment.DecodeHeader(hdr[:n])
	}
	// The header is judged before the file is mapped: its size may not be
	// the file's.
	if ref := segment.RecoveryRefusal(path, h, herr, st.Size(), nil, 0); ref.Refused() != nil {
		f.Close()
		w.leftAsIs(path, ref.Refused())
		return nil, nil
	}
	s, err := mapSegment(f, path, seq, h.Size, w.pages.huge(w.opts.Sync, nil))
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	return w.recoverMapped(s, h, last, prev)
}

// leftAsIs counts and logs a segment recovery leaves unsealed, for why
// (segment.Refusal).
func (w *Writer) leftAsIs(path string, why *segment.CorruptError) {
	w.damaged(path)
	w.opts.Logger.Error("recovery: segment left unsealed; run auditseg verify", "file", path, "err", error(why))
}

// recoverMapped is recoverSegment once s is mapped, h being its header.
//
// Its reads and stores of the mapping run under segment.Guard (one for
// the walk, one for the repairs and the footer's reads): a file truncated
// after recoverSegment checked its size (FORMAT.md section 12, assumption
// 8) is an error naming the file and the offset that had no data, not a
// SIGBUS that kills the process. s is then released and no footer is
// written: a fault in the walk leaves the file as it was; one in the
// repairs may leave the PAD and END frames stored before it, in the pages
// the file kept, which the next recovery writes again.
func (w *Writer) recoverMapped(s *seg, h segment.Header, last bool, prev *[segment.DigestSize]byte) (*seg, error) {
	r, err := walkForRecovery(s, h)
	if err != nil {
		return nil, err
	}
	if r.refused != nil {
		w.leftAsIs(s.path, r.refused)
		return nil, s.release()
	}
	if last && r.unused && h.Size == w.opts.SegmentSize {
		if err := w.remapUnused(s); err != nil {
			s.release()
			return nil, fmt.Errorf("recovery: %w", err)
		}
		// The record area is all zeros (EvTail at HeaderSize). A fault
		// here (prefault's error) already names the file.
		if err := w.populate(s, true); err != nil {
			s.release()
			return nil, err
		}
		s.tail.Store(segment.HeaderSize)
		return s, nil // prepared but never used: continue in it
	}
	return nil, w.repairAndSeal(s, r, prev)
}

// repairs is what recovery's walk of a segment found it must write.
type repairs struct {
	pads    [][2]int64            // reserved frames and gaps to make PAD: offset, length
	end     int64                 // where the END frame goes, or -1 if it has one
	torn    [2]int64              // a torn tail to put under a PAD (step 3.5): offset, length; length 0 if none
	refused *segment.CorruptError // why the segment is left as it is (segment.Refusal), or nil
	// unused: nothing was ever written past the header (step 3.3), the
	// walk one EvTail at HeaderSize and the footer's bytes zero. No frame
	// and END at HeaderSize is not that: an END claim there ends the walk
	// the same way, and the footer's bytes are not walked.
	unused bool
}

// walkForRecovery walks the mapped segment s, whose header is h, under the
// first guard (see recoverMapped); a fault releases s.
func walkForRecovery(s *seg, h segment.Header) (repairs, error) {
	img := s.data
	r := repairs{end: -1}
	ref := segment.RecoveryRefusal(s.path, h, nil, h.Size, img, h.Size)
	if err := segment.Guard(img, func() {
		segment.Walk(img, s.seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			if r.refused = ref.Event(&ev); r.refused != nil {
				return false // a torn frame, or a damaged END claim
			}
			switch ev.Kind {
			case segment.EvTorn:
				// Passed: a torn tail, which ends the walk. Its bytes
				// stay under the PAD, for inspect; END goes after them.
				pad, _ := ref.TornTail(&ev)
				r.torn, r.end = [2]int64{ev.Offset, pad}, ev.Offset+pad
			case segment.EvReserved, segment.EvGap:
				if claim, _ := segment.EndClaim(img, ev.Offset, ev.Len); claim {
					r.end = ev.Offset // END claimed but not written: finish it
					break
				}
				r.pads = append(r.pads, [2]int64{ev.Offset, ev.Len})
			case segment.EvTail:
				r.end = ev.Offset
				r.unused = ev.Offset == segment.HeaderSize && segment.ZeroFrom(img, segment.RecordLimit(h.Size), h.Size) == h.Size
			}
			return true
		})
	}); err != nil {
		return r, recoveryFault(s, err)
	}
	return r, nil
}

// repairAndSeal writes r's PAD and END frames into s and seals it durably,
// chained to *prev, which it moves on. The repairs and the footer's reads
// run under the second guard (see recoverMapped).
func (w *Writer) repairAndSeal(s *seg, r repairs, prev *[segment.DigestSize]byte) error {
	img, seq := s.data, s.seq
	var ft segment.Footer
	var ferr error
	if err := segment.Guard(img, func() {
		for _, p := range r.pads {
			segment.PutPad(img, seq, p[0], p[1])
		}
		if r.torn[1] > 0 {
			segment.PutPad(img, seq, r.torn[0], r.torn[1])
		}
		if r.end >= 0 {
			segment.PutEnd(img, seq, r.end, now())
		}
		ft, ferr = segment.SealFooter(img, *prev, segment.FlagRecovered, now())
	}); err != nil {
		return recoveryFault(s, err)
	}
	if ferr != nil {
		s.release()
		return segment.FileError(s.path, "recovery", segment.WithPath(ferr, s.path))
	}
	// The records and the repairs reach the disk first, the footer after,
	// as when the running writer seals (finish).
	if err := w.seal(s, ft, true, false); err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	// Only a seal moves the chain on: a segment recovery leaves as it is
	// (damaged) is outside it, and verify checks the link past it
	// (pkg/verify/chain.go).
	*prev = ft.Digest
	w.stats.RecoveredSegments++
	w.stats.RecoveredFrames += len(r.pads)
	if r.torn[1] > 0 {
		w.stats.TornTails++
		w.opts.Logger.Warn("recovery: torn tail: a committed frame an interrupted flush tore; nothing intact follows it; put under a PAD, its bytes kept",
			"file", s.path, "offset", r.torn[0], "length", r.torn[1])
	}
	w.opts.Logger.Info("recovered segment", "file", s.path, "records", ft.Records, "padded", len(r.pads), "end", ft.EndOffset)
	return nil
}

// recoveryFault releases s, whose mapping faulted (err, from
// segment.Guard) while recovery read or repaired it, and returns the
// error Open fails with: the file, and the offset that had no data.
func recoveryFault(s *seg, err error) error {
	_ = s.release()
	return segment.Changed(s.path, "being recovered", err)
}

// damaged counts a segment recovery leaves as it is. Its intact records
// may not be durable (an earlier SyncNone writer): the first Sync fsyncs
// it with the inherited sealed segments.
func (w *Writer) damaged(path string) {
	w.stats.DamagedSegments++
	w.lazy.inherited = append(w.lazy.inherited, path)
}

// remapUnused maps again the segment s, prepared by an earlier writer and
// never used, after giving back its page cache. That writer populated it
// in the page size its own flushes called for; 2 MiB folios left for a
// writer that maps in 4 KiB pages (pages.go) would make each of its
// flushes write 2 MiB: SyncAlways after a SyncNone writer wrote 2 MiB an
// append. The record area holds only zeros, so it is punched out (the
// pages go, dirty or not, with nothing written) and reserved again: the
// segment stays reserved in full, never sparse. The header's page is
// written back if it is dirty, then dropped. Where the file system cannot
// punch holes, the zeros are written back and dropped instead.
func (w *Writer) remapUnused(s *seg) error {
	if err := segment.Unmap(s.data); err != nil {
		return fmt.Errorf("unmap %s: %w", s.path, err)
	}
	s.data = nil
	fd, size := int(s.f.Fd()), w.opts.SegmentSize
	page := int64(os.Getpagesize())
	from := (segment.HeaderSize + page - 1) &^ (page - 1) // the pages after the header's
	if unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, size-from) == nil {
		if err := w.opts.FS.Fallocate(s.f, size); err != nil {
			return fmt.Errorf("reserve %s again after giving its pages back: %w", s.path, err)
		}
	}
	// Errors ignored: the pages are zeros in a reserved file whose header
	// was fsynced when the file was made. Through the FS all the same, so
	// that one instrumenting the writer's I/O sees it.
	_ = syncRange(w.opts.FS)(s.f, 0, size)
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	huge := w.pages.huge(w.opts.Sync, nil)
	m, err := segment.MapFile(s.f, size, true, huge)
	if err != nil {
		return err
	}
	s.data, s.huge = m, huge
	return nil
}
