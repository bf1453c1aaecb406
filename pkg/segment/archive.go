package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"syscall"

	"github.com/klauspost/compress/zstd"
)

// Archives (NAME.seg.zst) are one standard zstd frame holding the segment
// file byte for byte, with the decompressed size in the frame header, so
// stock `zstd -d` and `zstd -t` work on them. pkg/archive writes them; this
// file reads them for OpenImage.
//
// Memory: reading an archive costs exactly one buffer of the segment's size
// (allocated from the frame header's content size, never grown) plus the
// decoder's small per-block state; the compressed file is mapped, not read
// into memory. A frame without a content size, or one claiming more than
// MaxSegmentSize, is refused before anything is allocated. OpenImage's
// buffer is a mapping of its own that Image.Close unmaps at once, like a
// mapped .seg file: a reader passing through many archives holds one
// decompressed segment (its prefetch opens no archive while it holds
// one), never as many 64 MiB buffers as the garbage collector lets pile
// up.

func init() {
	openArchive = mapArchive
}

// mapArchive decompresses the archive at path into a mapping of its own,
// released by the function returned.
func mapArchive(ctx context.Context, path string) ([]byte, int64, func() error, error) {
	var buf []byte
	data, size, err := readArchive(ctx, path, func(n int64) ([]byte, error) {
		b, err := AllocHuge(int(n))
		buf = b
		return b, err
	}, func(b []byte) {
		_ = Unmap(b)
		buf = nil
	})
	if err != nil {
		if buf != nil {
			_ = Unmap(buf)
		}
		return nil, 0, nil, err
	}
	return data, size, func() error { return Unmap(buf) }, nil
}

// maxBlockExpansion bounds how much one compressed byte can decode to: a
// zstd block (at most 128 KiB decoded) takes at least 4 bytes (an RLE
// block). A frame header claiming more than this is refused as impossible
// before its buffer is allocated, so a tiny file cannot make a reader
// allocate a gigabyte.
const maxBlockExpansion = (128 << 10) / 4

// maxArchiveSize bounds the compressed size of a segment: incompressible
// data is stored in raw blocks, which cost 3 bytes per 128 KiB, plus the
// frame header and checksum. Anything larger is not an archive we wrote.
func maxArchiveSize(content int64) int64 { return content + content/1024 + 4096 }

var (
	decoderOnce sync.Once
	decoder     *zstd.Decoder
	decoderErr  error
)

// archiveDecoder is shared: DecodeAll is safe for concurrent use and, with
// no stream attached, the decoder starts no goroutines.
func archiveDecoder() (*zstd.Decoder, error) {
	decoderOnce.Do(func() { decoder, decoderErr = newArchiveDecoder() })
	return decoder, decoderErr
}

func newArchiveDecoder() (*zstd.Decoder, error) {
	return zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(MaxSegmentSize),
		zstd.WithDecoderMaxWindow(MaxSegmentSize),
		zstd.WithDecodeAllCapLimit(true))
}

// newStreamDecoder is a decoder for one stream at a time, decoded on the
// caller's goroutine (concurrency 1): the one that turns a fault on the
// mapped archive into an error, and the one whose reads blockTrace
// counts. Its memory is the frame's window, not the segment.
func newStreamDecoder(extra ...zstd.DOption) (*zstd.Decoder, error) {
	return zstd.NewReader(nil, append([]zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxSegmentSize),
		zstd.WithDecoderMaxWindow(MaxSegmentSize)}, extra...)...)
}

// ReadArchive decompresses the segment archive at path and returns the
// segment file's bytes. Symbolic links are never followed. Errors name the
// file; an archive that is damaged (bad frame, checksum mismatch, wrong
// size) gives an error wrapping ErrCorrupt, an I/O failure one that does
// not. The result is not checked as a segment: OpenImage does that.
func ReadArchive(path string) (data []byte, err error) {
	data, _, err = readArchive(context.Background(), path, func(n int64) ([]byte, error) { return make([]byte, n), nil }, nil)
	return data, err
}

// readArchive is ReadArchive decompressing, with the shared decoder
// (archiveDecoder), into a buffer of the content size from alloc; the result is
// that buffer, and the archive file's size. If the archive does not decode, the buffer is handed to
// free (nil: left to the collector) before locateDamage decodes it again,
// so that placing the damage never costs two segments' worth of memory.
func readArchive(ctx context.Context, path string, alloc func(n int64) ([]byte, error), free func([]byte)) (data []byte, archiveSize int64, err error) {
	a, err := openArchiveFile(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	defer a.close()
	dec, err := archiveDecoder()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: zstd decoder: %w", path, err)
	}
	buf, err := alloc(a.size)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	err = a.guard(func() error {
		// WithDecodeAllCapLimit: the output never outgrows buf.
		out, err := dec.DecodeAll(a.m, buf[:0])
		if err != nil {
			if free != nil {
				free(buf)
			}
			return a.locateDamage(err)
		}
		if int64(len(out)) != a.size {
			return a.corrupt("decompressed %d bytes, frame header says %d", len(out), a.size)
		}
		if err := a.checkOneFrame(); err != nil {
			return err
		}
		data = out
		return nil
	})
	return data, int64(len(a.m)), err
}

// readArchiveHeader decodes the header of the segment the archive at path
// holds from its first bytes, for ReadHeader when the summary cannot
// answer. A stream decoder stops once it has them: this costs the first
// block and the decoder's window, not the segment. Damage after that
// block is not seen, and the content checksum is not checked (the
// decoder checks it after the last block, which in a one-block archive
// is the first): the header's CRC vouches for the header. Errors name
// the file; one from the decoder or the header wraps ErrCorrupt.
func readArchiveHeader(ctx context.Context, path string) (Header, error) {
	a, err := openArchiveFile(ctx, path)
	if err != nil {
		return Header{}, err
	}
	defer a.close()
	dec, err := newStreamDecoder(zstd.IgnoreChecksum(true))
	if err != nil {
		return Header{}, fmt.Errorf("%s: zstd decoder: %w", path, err)
	}
	defer dec.Close()
	var b [HeaderSize]byte
	n := 0
	err = a.guard(func() (err error) {
		if err = dec.Reset(bytes.NewReader(a.m)); err != nil {
			return a.corrupt("cannot decompress: %v", err)
		}
		if n, err = io.ReadFull(dec, b[:min(a.size, HeaderSize)]); err != nil {
			return a.corrupt("cannot decompress the segment's header: %v", err)
		}
		return nil
	})
	if err != nil {
		return Header{}, err
	}
	h, err := DecodeHeader(b[:n])
	return h, WithPath(err, path)
}

// ArchiveComparer checks archives against the segment files they were
// made from, for compress-finished, which must not remove an original
// before its archive is known to reproduce it. It decompresses as a
// stream, comparing each block with the same range of the original while
// the block is in cache, so it holds no decompressed copy: its memory is
// the decoder's window and block buffers and one block of the original,
// reused from one archive to the next. The checks of the archive file and
// its frame header are ReadArchive's, the decoder is the same library with
// the same limits, so what it accepts readers can read. One comparer
// serves one goroutine at a time.
type ArchiveComparer struct {
	dec *zstd.Decoder
}

// NewArchiveComparer returns a comparer; Close releases it.
func NewArchiveComparer() (*ArchiveComparer, error) {
	dec, err := newStreamDecoder()
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &ArchiveComparer{dec: dec}, nil
}

// Close releases the decoder.
func (c *ArchiveComparer) Close() { c.dec.Close() }

// Compare decompresses the archive at path and compares it byte for byte
// with want, the segment file it should hold. nil means the archive
// decompresses to exactly want and its summary, if it has one, is a copy
// of want's header and footer. A damaged archive, or one holding
// anything else, gives an error wrapping ErrCorrupt that names the file
// (and the first differing offset); an I/O failure gives one that does not.
func (c *ArchiveComparer) Compare(path string, want []byte) error {
	a, err := openArchiveFile(context.Background(), path)
	if err != nil {
		return err
	}
	defer a.close()
	// want is read whole: the original's name is in no error.
	o := original{b: want, path: "the original"}
	return a.guard(func() error { return c.compare(a, o, int64(len(want))) })
}

// CompareReader is Compare on the archive file's content already read into
// memory (compress-finished reads it back from the disk itself; path names
// it in errors), against the size bytes of the original, the file at
// origPath, read through orig (views of its mapping or copies, whichever
// Chunks finds cheaper; released behind the comparison). A failure to
// read orig names origPath and the offset, and is not ErrCorrupt; orig
// shorter than size is a *ChangedError (see ReadAt); a view of a file cut
// short faults, for the caller's Guard, but reads as zeros from the cut to
// the end of its page: the caller checks the file's size afterwards.
func (c *ArchiveComparer) CompareReader(path string, archive []byte, origPath string, orig *Chunks, size int64) error {
	a := &archiveFile{path: path, m: archive}
	if err := a.checkSize(int64(len(archive))); err != nil {
		return err
	}
	if err := a.checkFrame(); err != nil {
		return err
	}
	return c.compare(a, original{c: orig, path: origPath}, size)
}

// original is the segment file an archive is compared with: its bytes in
// memory (b), or read through c; and the name its read errors give.
type original struct {
	b    []byte
	c    *Chunks
	path string
}

// read returns n bytes at off, at most chunk() of them. The
// ArchiveComparer serves compress-finished: a file that shrank was
// changed while it was being archived.
func (o original) read(off int64, n int) ([]byte, error) {
	if o.c != nil {
		return o.c.ReadFull(o.path, "being archived", off, n)
	}
	if off+int64(n) > int64(len(o.b)) {
		return nil, shortRead(o.path, "being archived", int64(len(o.b)), nil)
	}
	return o.b[off : off+int64(n)], nil
}

// chunk is the most read returns at once.
func (o original) chunk() int {
	if o.c != nil {
		return o.c.Size()
	}
	return len(o.b)
}

func (o original) release(off int64) {
	if o.c != nil {
		o.c.Release(off)
	}
}

func (c *ArchiveComparer) compare(a *archiveFile, orig original, size int64) error {
	if a.size != size {
		return a.corrupt("frame header says %d bytes, the original has %d", a.size, size)
	}
	defer c.dec.Reset(nil) // drop the archive's bytes
	t := newBlockTrace(a)
	if err := c.dec.Reset(t); err != nil {
		return a.corrupt("cannot decompress: %v", err)
	}
	w := compareWriter{orig: orig, size: size, diff: -1, trace: t}
	_, err := c.dec.WriteTo(&w)
	switch {
	case w.readErr != nil:
		return w.readErr
	case w.diff >= 0:
		return a.corrupt("differs from the original at offset %d", w.diff)
	case err != nil:
		return a.damage(t, err)
	case w.off != size:
		return a.corrupt("decompressed %d bytes, frame header says %d", w.off, a.size)
	}
	// As readArchive: the stream decoder, too, decodes a second data
	// frame that adds no bytes.
	if err := a.checkOneFrame(); err != nil {
		return err
	}
	return a.checkSummary(orig, size)
}

// checkSummary checks the archive's summary frame, if it has one, against
// the original's header and footer: compress-finished removes the original
// once the archive verifies, and a summary that is wrong then stays wrong
// (readers take times and counts from it; verify reports it as damage).
func (a *archiveFile) checkSummary(orig original, size int64) error {
	n := int64(len(a.m))
	if n < SummaryFrameSize || size < HeaderSize+FooterSize {
		return nil
	}
	var want [HeaderSize + FooterSize]byte
	b, err := orig.read(0, HeaderSize)
	if err != nil {
		return err
	}
	copy(want[:HeaderSize], b)
	if b, err = orig.read(size-FooterSize, FooterSize); err != nil {
		return err
	}
	copy(want[HeaderSize:], b)
	orig.release(size)
	return matchSummary(a.path, n-SummaryFrameSize, a.m[n-SummaryFrameSize:], want[:HeaderSize], want[HeaderSize:])
}

// compareWriter compares what is written to it with the original, read
// as it goes, stopping at the first difference (diff, else -1), at
// anything past the original's size, or at a failure to read the original
// (readErr). What it has compared of a mapped original is released.
type compareWriter struct {
	orig    original
	size    int64
	off     int64
	diff    int64
	readErr error
	trace   *blockTrace
}

var errDiffers = errors.New("differs")

func (w *compareWriter) Write(p []byte) (int, error) {
	n := int(min(int64(len(p)), w.size-w.off))
	for done := 0; done < n; {
		k := min(n-done, w.orig.chunk())
		want, err := w.orig.read(w.off, k)
		if err != nil {
			w.readErr = err
			return 0, err
		}
		if got := p[done : done+k]; !bytes.Equal(got, want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			w.diff = w.off + int64(i)
			return 0, errDiffers
		}
		done += k
		w.off += int64(k)
		w.trace.delivered(k)
	}
	w.orig.release(w.off)
	if n < len(p) {
		w.diff = w.off
		return 0, errDiffers
	}
	return len(p), nil
}

// archiveFile is an archive file mapped for decoding, its size and frame
// header checked.
type archiveFile struct {
	path string
	m    []byte
	size int64 // the content size the frame header states
	// headerSize is the frame header's length: where the first block starts.
	headerSize int64
	checksum   bool // the frame ends with a 4-byte content checksum
}

// openArchiveFile opens and maps the archive at path (never through a
// symbolic link) and checks its size and frame header, so that nothing is
// allocated from a claim the file cannot back.
func openArchiveFile(ctx context.Context, path string) (*archiveFile, error) {
	// A FIFO named like an archive fails below (not a regular file): the
	// open does not block (OpenNoFollow).
	f, err := OpenNoFollowContext(ctx, path)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: is a symbolic link; segment links are never followed", path)
		}
		return nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, NotRegularFile(path, st.Mode())
	}
	a := &archiveFile{path: path}
	if err := a.checkSize(st.Size()); err != nil {
		return nil, err
	}
	// MapFile: huge-page mapped where the page cache allows, which spares
	// a fault per 4 KiB page (see MapFile).
	if a.m, err = MapFile(f, st.Size(), false, true); err != nil {
		return nil, err
	}
	if err := a.guard(a.checkFrame); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// checkSize refuses an archive file of n bytes that no segment archive
// can be, before anything is read.
func (a *archiveFile) checkSize(n int64) error {
	if n == 0 {
		return a.corruptAt(0, "empty archive")
	}
	if n > maxArchiveSize(MaxSegmentSize) {
		return a.corruptAt(0, "archive is %d bytes, larger than any segment archive", n)
	}
	return nil
}

// checkFrame checks the frame header at the start of a.m (the whole
// file) and sets a.size from it.
func (a *archiveFile) checkFrame() error {
	var zh zstd.Header
	if err := zh.Decode(a.m); err != nil {
		return a.corruptAt(0, "not a zstd frame: %v", err)
	}
	switch {
	case zh.Skippable:
		return a.corruptAt(0, "archive starts with a skippable frame, not a segment")
	case zh.DictionaryID != 0:
		return a.corruptAt(0, "archive needs zstd dictionary %d; segment archives use none", zh.DictionaryID)
	case !zh.HasFCS:
		return a.corruptAt(0, "zstd frame header does not state the decompressed size")
	case zh.FrameContentSize == 0 || zh.FrameContentSize > MaxSegmentSize:
		return a.corruptAt(0, "decompressed size %d is not a segment size (at most %d)", zh.FrameContentSize, MaxSegmentSize)
	}
	a.size, a.headerSize, a.checksum = int64(zh.FrameContentSize), int64(zh.HeaderSize), zh.HasCheckSum
	n := int64(len(a.m))
	if a.size > maxBlockExpansion*n { // n <= maxArchiveSize(1 GiB): no overflow
		return a.corruptAt(0, "frame header claims %d bytes from only %d compressed bytes", a.size, n)
	}
	if n > maxArchiveSize(a.size) {
		return a.corruptAt(0, "archive is %d bytes, too large for %d bytes of content", n, a.size)
	}
	return nil
}

func (a *archiveFile) close() { _ = Unmap(a.m) }

func (a *archiveFile) corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", a.path, fmt.Sprintf(format, args...), ErrCorrupt)
}

// corruptAt is corrupt for damage at a known offset of the archive file:
// the zstd frame header's facts are at its start.
func (a *archiveFile) corruptAt(off int64, format string, args ...any) error {
	return &CorruptError{Path: a.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// guard runs fn, which reads the mapping on this goroutine. The file is
// mapped: if it is truncated while being read, touching the missing pages
// raises SIGBUS, which would kill the process; guard turns it into the
// *ChangedError a segment file gets (Image.Guard), at the archive file's
// offset that had no data.
func (a *archiveFile) guard(fn func() error) error {
	var err error
	if gerr := Guard(a.m, func() { err = fn() }); gerr != nil {
		return changedRead(a.path, nil, gerr)
	}
	return err
}

// checkOneFrame checks that the data frame at the start of a.m (which
// checkFrame checked and the decoder decoded) is followed by skippable
// frames only: DecodeAll decodes concatenated frames, and a second data
// frame that decodes to nothing adds no bytes to notice it by.
func (a *archiveFile) checkOneFrame() error {
	p := a.headerSize
	for {
		if p+3 > int64(len(a.m)) {
			return a.corrupt("zstd frame truncated at %d", p)
		}
		bh := uint32(a.m[p]) | uint32(a.m[p+1])<<8 | uint32(a.m[p+2])<<16
		size := int64(bh >> 3)
		if (bh>>1)&3 == 1 { // RLE: one byte
			size = 1
		}
		p += 3 + size
		if bh&1 != 0 {
			break
		}
	}
	if a.checksum {
		p += 4
	}
	for p < int64(len(a.m)) {
		var sh zstd.Header
		if err := sh.Decode(a.m[p:]); err != nil || !sh.Skippable {
			// Damage after the segment, which decoded whole: an
			// *ArchiveDamage, so that readers salvage every record
			// (each vouched for by its CRC) as for garbage there.
			return &ArchiveDamage{Path: a.path, Block: p, Lost: a.size, Size: a.size,
				Err: errors.New("a second zstd data frame; an archive holds one")}
		}
		p += 8 + int64(sh.SkippableSize)
	}
	return nil
}
