package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

// original is the segment being archived: its mapped image, whose header
// and footer decide that it may be archived, and the file again. Its
// bytes are compressed and compared a chunk at a time, each a view of
// the image or a copy read from the file with pread, whichever costs
// less on this machine (segment.Chunks, probed in each pass). On the VMs
// we first measured, the first pass over a fresh mapping of a 64 MiB
// segment cost ~45 ms more than reading it into a small buffer (the
// hypervisor builds an entry for every 4 KiB page first touched), ~7 %
// of compress-finished's CPU; on a later kernel views cost a fraction of
// the copies, which were ~3 % of it (docs/BENCHMARKS.md).
type original struct {
	im    *segment.Image
	src   *os.File
	size  int64
	mtime time.Time // given to its archive
	// perm and gid (-1: unknown) are its permission bits and group, also
	// given to its archive (sameAccess).
	perm os.FileMode
	gid  int
	out  *outBuf // of the worker archiving it
	// foot is its footer, whose digest encode checks the bytes it
	// compresses against.
	foot segment.Footer
}

// openOriginal opens the segment file at path for reading and checks that
// it is the file Lstat described as before, of the size its image has.
// The name may hold another file by now (renamed over it), which the
// check finds only once it is open: the open neither blocks on a FIFO nor
// waits for a lease's break once ctx is done (segment.OpenNoFollowContext).
func openOriginal(ctx context.Context, path string, before os.FileInfo, size int64) (*os.File, error) {
	f, err := segment.OpenNoFollowContext(ctx, path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = changedSince(path, before, size, st, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// changedSince says how the original at path, size bytes and described
// by before when its work started, differs as now: nil if it is the same
// file of that size (and, with mtime, the same modification time). A
// file that shrank is a *segment.ChangedError at its new end, the offset
// that has no data, as when a read meets it; one that grew names where
// the new bytes start; another file in its place, or one written in place
// (mtime), has no offset to give.
func changedSince(path string, before os.FileInfo, size int64, now os.FileInfo, mtime bool) error {
	switch {
	case !os.SameFile(before, now):
		return fmt.Errorf("%s: replaced by another file while it was %s", path, changedWhile)
	case now.Size() < size:
		return shrankTo(path, now.Size())
	case now.Size() > size:
		return fmt.Errorf("%s: changed while it was %s: %d bytes, %d before: new bytes from offset %d", path, changedWhile, now.Size(), size, size)
	case mtime && !before.ModTime().Equal(now.ModTime()):
		return fmt.Errorf("%s: changed while it was %s: written to (modified at %s, %s before), its size (%d bytes) unchanged",
			path, changedWhile, now.ModTime().UTC().Format(time.RFC3339Nano), before.ModTime().UTC().Format(time.RFC3339Nano), size)
	}
	return nil
}

// chunkSize is how much of the original is read at a time: small enough
// to stay in cache between the read and the encoder's copy of it, or the
// decoder's output it is compared with.
const chunkSize = 256 << 10

// slot is the reusable state of one CPU slot: a stream encoder of its own,
// the buffer the original is read through, and the comparer that verifies
// archives.
type slot struct {
	zw    *zstd.Encoder
	chunk []byte
	cmp   *segment.ArchiveComparer
}

// chunks returns a pass over the original o through the slot's chunk
// buffer.
func (s *slot) chunks(o *original) *segment.Chunks {
	if s.chunk == nil {
		s.chunk = make([]byte, chunkSize)
	}
	return segment.NewChunks(o.im, o.src, s.chunk, segment.ReadProbe)
}

func (s *slot) free() {
	if s.cmp != nil {
		s.cmp.Close()
	}
	if s.zw != nil {
		s.zw.Close()
	}
}

// outBuf is the buffer one segment's archive is compressed into and read
// back into: one for each segment in flight, not for each CPU slot, so
// that writing the archive to the disk and reading it back (direct I/O,
// the CPU idle) happen without a slot, which another segment uses
// meanwhile. On the VM we measured it on, whose virtual disk takes that
// I/O in a few ms, it made no wall-time difference we could tell from
// the noise (docs/BENCHMARKS.md, 2026-11-29 09:40); a slower disk would
// hold the slot idle longer. It is a huge-page
// mapping (segment.AllocHuge) outside the Go heap, kept for the whole run
// and released by free: a fresh 64 MiB heap buffer costs ~250 ms of page
// faults on our VMs, as much as compressing a quarter of a segment. It is
// touched only as far as the archives it holds go. The read-back
// overwrites it: the encoder's output has been written by then, and
// readBack fails unless it read the whole file, so none of that output
// can pass for what the disk returned.
type outBuf struct{ b []byte }

// ensure makes the buffer a mapping large enough for the archive of an
// n-byte segment, read back with direct I/O (rounded up to directAlign),
// replacing a smaller one.
func (o *outBuf) ensure(r *runner, n int64) error {
	size := r.maxArchive(n) + 2*directAlign
	if len(o.b) >= size {
		return nil
	}
	o.free()
	m, err := segment.AllocHuge(size)
	if err != nil {
		return err
	}
	o.b = m
	return nil
}

func (o *outBuf) free() {
	_ = segment.Unmap(o.b)
	o.b = nil
}

// withCPU runs fn holding one of the Jobs CPU slots. Only compression and
// verification hold one: the archive's write and read-back, the fsyncs
// and directory operations of a segment wait without it, so the CPUs stay
// busy with other segments meanwhile.
func (r *runner) withCPU(fn func(*slot) error) error {
	b := <-r.cpu
	defer func() { r.cpu <- b }()
	return fn(b)
}

// maxArchive bounds the size of the archive of an n-byte segment that
// this run writes.
func (r *runner) maxArchive(n int64) int {
	return r.bound.MaxEncodedSize(int(n)) + segment.SummaryFrameSize
}

// encode compresses the original into its outBuf as one zstd frame
// stating the original's size, and returns the frame.
func (s *slot) encode(r *runner, o *original) ([]byte, error) {
	if s.zw == nil {
		zw, err := zstd.NewWriter(nil, encoderOptions(r.opts)...)
		if err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
		s.zw = zw
	}
	if err := o.out.ensure(r, o.size); err != nil {
		return nil, err
	}
	w := &boundedWriter{b: o.out.b[:0]}
	s.zw.ResetContentSize(w, o.size)
	defer s.zw.Reset(nil) // keep no reference to the buffer
	c := s.chunks(o)
	// The bytes are hashed as they are compressed: once the original is
	// removed, the archive is the only copy, and an archive of a segment
	// whose records rotted after it was sealed would pass every check
	// (the comparison, zstd -t) with the rot inside it.
	d := segment.NewDigestStream(o.foot.PrevDigest)
	hashEnd := min(o.foot.EndOffset+segment.FrameHeaderSize, o.size)
	for off := int64(0); off < o.size; {
		b, err := c.ReadFull(o.src.Name(), changedWhile, off, int(min(int64(c.Size()), o.size-off)))
		if err != nil {
			return nil, err
		}
		d.AddIn(b, off, min(off+int64(len(b)), hashEnd))
		if _, err := s.zw.Write(b); err != nil {
			return nil, fmt.Errorf("compress %s: %w", o.src.Name(), err)
		}
		off += int64(len(b))
		c.Release(off)
	}
	if err := s.zw.Close(); err != nil {
		return nil, fmt.Errorf("compress %s: %w", o.src.Name(), err)
	}
	if sum := d.Sum(nil, hashEnd-segment.FrameHeaderSize); sum != o.foot.Digest {
		return nil, &segment.CorruptError{Path: o.src.Name(), Offset: int64(len(o.im.Data)) - segment.FooterSize,
			Reason: fmt.Sprintf("its records do not match its footer's digest (%x…, computed %x…), damaged since it was sealed: not archived, the original kept (run auditseg verify)", o.foot.Digest[:8], sum[:8])}
	}
	return w.b, nil
}

// boundedWriter appends to b within its capacity, the compression bound:
// output beyond it would be a bug, reported rather than reallocated.
type boundedWriter struct{ b []byte }

var errOverBound = errors.New("compressed output exceeds the compression bound")

func (w *boundedWriter) Write(p []byte) (int, error) {
	if len(p) > cap(w.b)-len(w.b) {
		return 0, errOverBound
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// verify reads the archive at path back from the disk (direct.go),
// without a CPU slot, and decompresses it, comparing it byte for byte
// with the original.
func (r *runner) verify(path string, o *original) error {
	if err := o.out.ensure(r, o.size); err != nil {
		return err
	}
	b, err := readBack(r.ctx, path, o.out.b)
	if err != nil {
		return err
	}
	return r.withCPU(func(s *slot) error {
		if s.cmp == nil {
			c, err := segment.NewArchiveComparer()
			if err != nil {
				return err
			}
			s.cmp = c
		}
		err := s.cmp.CompareReader(path, b, o.src.Name(), s.chunks(o), o.size)
		// Read through views, a file cut inside a page reads as zeros
		// from its new end to the page's, without a fault: a difference
		// found there is the original's change, not the archive's damage
		// (which resolve would remove).
		if serr := o.shrunk(); serr != nil {
			return serr
		}
		return err
	})
}

// shrunk returns a *segment.ChangedError at the original's new end if the
// file is now shorter than its image.
func (o *original) shrunk() error {
	st, err := o.src.Stat()
	if err != nil || st.Size() >= o.size {
		return nil
	}
	return shrankTo(o.src.Name(), st.Size())
}

// shrankTo is the error for an original at path that now ends at end.
func shrankTo(path string, end int64) error {
	return &segment.ChangedError{Path: path, While: changedWhile, Off: end, Err: io.ErrUnexpectedEOF}
}
