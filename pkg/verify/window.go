package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A full check reads every byte of every sealed segment once, a window at
// a time slid along the segment, so that the frame CRCs and the digest
// read each window's bytes from the CPU cache. A window is either a copy,
// read with pread(2) into a small buffer per worker, or a view of the
// segment's mapping: segment.Chunks chooses, per segment, by timing the
// two on the first two windows (chunks.go says why neither is always
// cheaper; a full verify of a 1 GiB log took 0.17 s through views
// against 0.20 s through copies on a kernel where views were cheap). A
// view, and what the walker read through the mapping, is released
// (MADV_DONTNEED, 2 MiB at a time: window.release) once the window has
// passed it, so a segment read through its mapping does not stay
// resident until its check ends; and no view spans two such blocks
// (window.readAtBlockEnd), so a job holds one at most.
//
// The mapping stays, and stays authoritative: a frame the window does not
// hold whole (a record larger than the window), and every slot off the
// common path (END, damage, a reserved frame), is read through it by the
// same walker as without a window. So the window changes how bytes are
// read, never what is checked; checkBytes in the tests checks every case
// through a copy, a view and no window. One more read goes through the
// window, sealed or not: the zeros after the last frame
// (checker.zeroTail), all of a segment a writer prepared ahead, which
// through the mapping without releases would stay resident.

// openImage opens path for checkPath: a sealed segment file that fits in
// buf is read into it (File.ReadImage), which for small segments costs
// less than mapping the file and reading it again through a window (half
// the time, for a log of 256 KiB segments); anything else is mapped. A
// segment file mapped with buf is returned open too, as src, for a
// window to read it through (the caller closes it); an archive, and any
// file without buf, is read through its image alone. How the bytes are
// read never changes what is checked.
//
// --quick reads of a sealed segment file only its header, its footer and
// the END frame's header, with pread (readEnds), returned as e instead
// of an image: mapping it cost more than the rest of its check (2 mmap,
// 3 munmap and 3 madvise calls a segment), and reading it whole more
// than these three reads, which made --quick slower than a full check on
// a log of many small segments.
//
// The file is opened once, for its footer and its bytes: two opens of
// its name could be two files, one renamed over the other in between,
// their bytes mixed in one check.
func openImage(path string, o *Options, buf []byte) (im *segment.Image, src *segment.File, e *ends, err error) {
	archive := segment.IsArchiveName(filepath.Base(path))
	if archive && o.Quick {
		// Its summary, if it decodes: nothing decompressed.
		if e, err = readArchiveEnds(o.ctx, path); e != nil || err != nil {
			return nil, nil, e, err
		}
	}
	if archive || buf == nil && !o.Quick {
		im, err = segment.OpenImageContext(o.ctx, path)
		return im, nil, nil, err
	}
	f, err := segment.OpenFileContext(o.ctx, path)
	if err != nil {
		return nil, nil, nil, err
	}
	if o.Quick {
		// A segment file not sealed, or whose header or footer is damaged,
		// is mapped below and walked, as by a full check.
		if e, err = readEnds(f); e != nil || err != nil {
			f.Close()
			return nil, nil, e, err
		}
	} else if f.Size() <= int64(len(buf)) {
		// The footer is read before the bytes are copied, as the mapped
		// check reads it before walking: a segment sealed by then never
		// changes, so the copy is consistent; one a writer seals while it
		// is being copied would not be. A file larger than buf is read
		// through the window, mapped without that read.
		if _, ferr := f.Footer(); ferr == nil {
			im, err = f.ReadImage(buf)
			f.Close()
			return im, nil, nil, err
		}
	}
	if im, err = f.MapImage(); err != nil || buf == nil {
		f.Close()
		return im, nil, nil, err
	}
	return im, f, nil, nil
}

// ends is what --quick reads of a sealed segment file in place of its
// image (openImage): its header and footer, valid, and whether the
// footer's END offset holds a committed END frame. Of an archive, the
// copies its summary holds (fileSize is then the archive's size).
type ends struct {
	size, fileSize int64
	h              segment.Header
	ft             segment.Footer
	hasEnd         bool
	archived       bool
}

// readArchiveEnds reads the ends of the archive at path from its summary:
// decompressing it for --quick cost as much as a full check (0.48 s for
// 64 archived segments of 8 MiB, against 0.02 s for the same segment
// files). The END frame is in the compressed content, out of reach
// without decompressing everything before it: it is taken to be where
// the footer's copy says, which compress-finished checked (it compares
// the archive with its original, summary included, before it puts it in
// place). nil, and no error, when the summary is missing or damaged, or
// cannot be read for another reason: the archive is then decompressed
// and checked in full, which reports why. The error is the context's,
// or the archive gone.
func readArchiveEnds(ctx context.Context, path string) (*ends, error) {
	h, ft, size, err := segment.ReadSummarySize(ctx, path)
	switch {
	case err == nil:
		return &ends{size: h.Size, fileSize: size, h: h, ft: ft, hasEnd: true, archived: true}, nil
	case cancel.Ended(ctx, err), errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return nil, nil
}

// readEnds reads the ends of the segment file f, if it is sealed: nil,
// and no error, if it is not or its header or footer is damaged (an
// image of it says how). The error is a read's of the END frame.
func readEnds(f *segment.File) (*ends, error) {
	h, ft, err := f.HeaderFooter()
	if err != nil {
		return nil, nil
	}
	hasEnd, err := f.EndAt(h, ft.EndOffset)
	if err != nil {
		return nil, err
	}
	return &ends{size: f.Size(), fileSize: f.Size(), h: h, ft: ft, hasEnd: hasEnd}, nil
}

// windowSize is the window of each verify worker: large enough that
// pread's per-call cost vanishes, small enough to stay in the L2 cache.
const windowSize = 1 << 20

// window is a sealed segment being read a window at a time. The digest
// of the bytes it passes is computed on the way, in order.
type window struct {
	src   io.ReaderAt
	buf   []byte // pread's buffer: a window holds at most len(buf) bytes
	held  []byte // what the window holds: buf's first n bytes, or a view
	base  int64  // segment offset of held[0]
	valid int64  // bytes of the segment the source holds

	// im is the segment's mapping, of which the window can be a view
	// instead of a copy (nil: always a copy); how is mode's to say
	// (segment.ReadProbe unless a test says otherwise).
	im     *segment.Image
	mode   segment.ReadMode
	chunks *segment.Chunks // reads the windows and releases the mapping, made by reader

	digest    *segment.DigestStream
	digestEnd int64 // where the digest stops: the END frame's header end

	// err is the first read error other than the end of the file. What
	// the window could not read is then read through the mapping, which
	// faults on the same error; err is what the check reports.
	err error

	file *segment.File // src, when the window is to close it
}

// close closes the window's file, if it has one.
func (w *window) close() {
	if w.file != nil {
		w.file.Close()
		w.src, w.file = nil, nil
	}
}

func (w *window) end() int64 { return w.base + int64(len(w.held)) }

// bytes returns what the window holds.
func (w *window) bytes() []byte { return w.held }

// reader returns what reads the windows.
func (w *window) reader() *segment.Chunks {
	if w.chunks == nil {
		w.chunks = segment.NewChunks(w.im, w.src, w.buf, w.mode)
	}
	return w.chunks
}

// fill reads the window from off on (img is the segment's mapping) and
// reports whether it holds any of it. A short read (a file truncated
// under us, or an I/O error, kept in err) leaves a short window: what it
// does not hold is read through the mapping, which reports the damage.
func (w *window) fill(img []byte, off int64) bool {
	w.release(img, off)
	n := min(int64(len(w.buf)), w.valid-off)
	if off < 0 || n <= 0 {
		w.base, w.held = off, nil
		return false
	}
	r := w.reader()
	var b []byte
	var err error
	if end := off&^(segment.ReleaseBlock-1) + segment.ReleaseBlock; r.Viewing() && off+n > end {
		b, err = w.readAtBlockEnd(r, img, off, n, end)
	} else {
		b, err = r.Read(off, int(n))
	}
	if err != nil && err != io.EOF && w.err == nil {
		w.err = fmt.Errorf("reading %d bytes at offset %d: %w", n, off, err)
	}
	w.base, w.held = off, b
	return len(b) > 0
}

// straddle is how far into the next block readAtBlockEnd's copies reach:
// past most frames that span a block's end, and little to copy.
const straddle = 16 << 10

// readAtBlockEnd reads the window from off, n bytes, when a view of them
// would span the end of off's block of the mapping (segment.ReleaseBlock).
// A fault maps a whole folio of the file, up to a block, so such a view
// held two blocks, the one behind released only once the window had left
// it; with the page cache in 2 MiB folios that was 4 MiB a job, against
// about one block in 4 KiB folios. So a view stops at the block's end,
// and the frame spanning it is copied into the buffer from the mapping,
// with what follows up to straddle into the next block (or the whole
// frame): the block behind is given back before the next one is touched.
// One job then holds at most one block of its segment's mapping on the
// common path, whatever the page cache holds the file in (auditseg
// verify's peak went from 17-21.5 MiB, by how the log was cached, to
// 13.1-13.5 MiB, on logs of 7 and 29 segments). The copies are straddle
// and a frame a block, about 1 % of the bytes, copied from the mapping
// as the view would have been read: with pread instead (a call a block)
// a full verify of logs in 2 MiB folios took 3-5 % more CPU.
func (w *window) readAtBlockEnd(r *segment.Chunks, img []byte, off, n, end int64) ([]byte, error) {
	if end-off >= straddle {
		v, err := r.Read(off, int(end-off))
		if !spansPast(v, n) {
			return v, err
		}
	}
	k := int64(copy(w.buf, img[off:end]))
	// The block behind, not up to end through r: the pass may read it
	// again (a frame after the copied one too long for this window, the
	// END frame, one larger than the window), and r's next Release, from
	// where r stopped, then gives it back again. Past it, r never did.
	w.im.Release(end-segment.ReleaseBlock, end)
	c := min(n, end-off+straddle)
	copy(w.buf[k:c], img[end:off+c])
	if c < n && spansPast(w.buf[:c], n) {
		copy(w.buf[c:n], img[off+c:off+n])
		c = n
	}
	return w.buf[:c], nil
}

// spansPast reports whether the frame p starts with (as cut reads it)
// runs past p, within n bytes, which a window of n bytes would hold.
func spansPast(p []byte, n int64) bool {
	if len(p) < segment.FrameHeaderSize {
		return true
	}
	l := int64(segment.LoadLength(p, 0))
	return l > int64(len(p)) && l <= n
}

// release gives back the mapping's pages below off, which the window is
// leaving (Image.Release): its views, and what the walker read through
// the mapping (a record larger than the window, damage), in either mode.
// The digest is brought up to off first: hashed after the release, those
// bytes were mapped again, and stayed so until the check ended (a
// segment of records larger than the window stayed resident whole).
func (w *window) release(img []byte, off int64) {
	if w.im == nil || off <= w.reader().Released() {
		return
	}
	w.hash(img, off)
	w.reader().Release(off)
}

// giveBack releases whatever a check read of the mapping before the
// window's pass: the header's block, and the footer's, which otherwise
// stayed resident until the pass reached it (see readAtBlockEnd). It
// does nothing without a window.
func (w *window) giveBack() {
	if w != nil && w.im != nil {
		w.im.Release(0, int64(len(w.im.Data)))
	}
}

// hash brings the digest up to upto (at most digestEnd): from the window
// what it holds, the rest through the mapping img. Without a digest (it
// is computed elsewhere: digestAhead) it does nothing.
func (w *window) hash(img []byte, upto int64) {
	d := w.digest
	if d == nil {
		return
	}
	upto = min(upto, w.digestEnd)
	if d.Hashed() < w.base {
		d.Add(img, min(upto, w.base)) // bytes the window never held
	}
	if h := d.Hashed(); h < upto && h >= w.base && h < w.end() {
		d.AddIn(w.bytes(), w.base, min(upto, w.end()))
	}
	d.Add(img, upto)
}

// sum finishes the digest of img, whose END frame the footer puts at end.
func (w *window) sum(img []byte, end int64) [segment.DigestSize]byte {
	w.hash(img, w.digestEnd)
	return w.digest.Sum(img, end)
}

// scan is segment.ScanCheckIn through the window: it returns where the
// committed DATA and PAD frames from off stop, for the walker to go on
// from there, having tallied their records in t (odd: those it did not
// pass).
func (w *window) scan(seq uint64, size, off, limit int64, img []byte, t *segment.RecordTally, odd func(off, length, ts int64)) int64 {
	for off < limit {
		if off < w.base || off+segment.FrameHeaderSize > w.end() {
			if !w.fill(img, off) {
				break
			}
		}
		next := segment.ScanCheckIn(w.bytes(), w.base, size, seq, off, limit, t, odd)
		w.hash(img, next)
		if next == off {
			// Either the frame at off runs past the window, which is
			// then moved to start at it, or it is not for the fast path
			// (END, damage, larger than the window): the walker's,
			// without another read of the window.
			if !w.cut(off) || !w.fill(img, off) {
				break
			}
			continue
		}
		off = next
	}
	return off
}

// cut reports whether the window ends inside the slot at off, which a
// window starting at off would hold whole: a frame header cut by the
// window's end, or a committed frame running past it.
func (w *window) cut(off int64) bool {
	if off == w.base {
		return false // a window starting at off does not hold it either
	}
	if off+segment.FrameHeaderSize > w.end() {
		return true
	}
	l := int64(segment.LoadLength(w.bytes(), off-w.base))
	return l > 0 && off+l > w.end() && l <= int64(len(w.buf)) && off+l <= w.valid
}

// zeroFrom is segment.ZeroFrom through the window.
func (w *window) zeroFrom(img []byte, from, limit int64) int64 {
	for from < limit {
		if from < w.base || from >= w.end() {
			if !w.fill(img, from) {
				return segment.ZeroFrom(img, from, limit)
			}
		}
		hi := min(limit, w.end())
		if p := w.base + segment.ZeroFrom(w.bytes(), from-w.base, hi-w.base); p < hi {
			return p
		}
		from = hi
	}
	return limit
}

// aheadSize is digestAhead's buffer: from the Go heap, whose pages are
// likely backed already (a fresh 2 MiB huge page cost more than it saved
// on a 64 MiB segment), and small enough to stay in the L2 cache.
const aheadSize = 256 << 10

// digestAhead computes a sealed segment's digest on a goroutine of its
// own while the walk reads the segment through the job's window: the
// digest costs about as much as the walk, so on an otherwise idle core
// one large segment takes about half the time. It reads src (the segment
// file) with pread into a buffer of its own, always: unlike the window it
// does not time a view against a copy (window.go's top), as it runs only
// beside a single large segment, where the copy is the known cost;
// without src, or for what src does not give, through the mapping img. A read error is returned with its
// offset, as the window's.
func digestAhead(src io.ReaderAt, img []byte, ft segment.Footer) ([segment.DigestSize]byte, error) {
	d := segment.NewDigestStream(ft.PrevDigest)
	end := ft.EndOffset + segment.FrameHeaderSize
	var err error
	if src != nil && end <= int64(len(img)) {
		buf := make([]byte, aheadSize)
		for off := int64(0); off < end; {
			n, rerr := src.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
			d.AddIn(buf[:n], off, off+int64(n))
			off += int64(n)
			if rerr != nil && rerr != io.EOF {
				err = fmt.Errorf("reading at offset %d: %w", off, rerr)
			}
			if rerr != nil || n == 0 {
				break
			}
		}
	}
	return d.Sum(img, ft.EndOffset), err
}
