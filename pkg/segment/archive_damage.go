package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// The zstd decoder's errors carry no position, and DecodeAll (the fast
// path readers take) cannot say how far it got. A damaged archive is
// therefore decoded a second time as a stream, on the caller's goroutine
// (concurrency 1), where the decoder reads exactly one block's bytes from
// its input (io.ReadFull of the 3-byte block header, then of the block)
// and hands that block's whole output to one Write. Counting what it has
// read when each block's output arrives gives where the next block
// starts; counting what it wrote gives the segment offset from which
// nothing decodes. No block header is parsed here: the decoder's own
// reads are the only source of positions.

// ArchiveDamage is an archive whose compressed frame does not decode. It
// wraps ErrCorrupt.
type ArchiveDamage struct {
	Path string
	// Block is the offset in the archive file of the zstd block the
	// decoder failed in: where its 3-byte block header starts. Strictly,
	// it is where the block after the last one that produced output
	// starts: an empty block (an encoder ends a frame with one when its
	// input ended on a block boundary) between that one and the failure
	// is not seen. -1 when the failure has no block (a content checksum
	// mismatch: some block decoded to the wrong bytes, the format cannot
	// say which), 0 when it is the frame header.
	Block int64
	// Lost is the segment offset from which the content is lost: how many
	// bytes of the segment decoded before the failing block. Size when
	// the whole segment decoded and the damage lies after it.
	Lost int64
	Size int64 // the segment's size, as the frame header states it
	Err  error // the decoder's error
}

func (e *ArchiveDamage) Error() string { return e.Path + ": " + e.Reason() }

func (e *ArchiveDamage) Unwrap() error { return ErrCorrupt }

// Reason is Error without the file name.
func (e *ArchiveDamage) Reason() string {
	switch {
	case e.Block < 0:
		return fmt.Sprintf("cannot decompress: %v: the archive decodes to %d bytes that are not the ones compressed, at offsets the format cannot tell; the whole segment is suspect", e.Err, e.Size)
	case e.Block == 0:
		return fmt.Sprintf("cannot decompress the zstd frame header: %v; nothing of the segment's %d bytes decodes", e.Err, e.Size)
	case e.Lost >= e.Size:
		return fmt.Sprintf("cannot decompress: %v after archive offset %d, where all %d bytes of the segment had decoded", e.Err, e.Block, e.Size)
	}
	return fmt.Sprintf("cannot decompress the zstd block at archive offset %d: %v; the segment decodes up to offset %d, its bytes from %d to %d are lost",
		e.Block, e.Err, e.Lost, e.Lost, e.Size)
}

// blockTrace is the archive's bytes as the streaming decoder reads them,
// counted. The writer the decoder writes to calls delivered once it has
// taken a block's output.
type blockTrace struct {
	src     io.Reader
	read    int64 // archive bytes the decoder has read
	blockAt int64 // where the block being decoded starts
	out     int64 // segment bytes delivered
}

func newBlockTrace(a *archiveFile) *blockTrace {
	return &blockTrace{src: bytes.NewReader(a.m), blockAt: a.headerSize}
}

func (t *blockTrace) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.read += int64(n)
	return n, err
}

func (t *blockTrace) delivered(n int) {
	t.out += int64(n)
	t.blockAt = t.read
}

// damage is the decoder's error err, met while t was being read, placed.
func (a *archiveFile) damage(t *blockTrace, err error) *ArchiveDamage {
	d := &ArchiveDamage{Path: a.path, Block: t.blockAt, Lost: t.out, Size: a.size, Err: err}
	switch {
	case errors.Is(err, zstd.ErrCRCMismatch):
		d.Block, d.Lost = -1, 0
	case t.read <= a.headerSize && t.out == 0:
		// Nothing past the frame header was read: the decoder refused
		// the header itself (a window it will not allocate, say).
		d.Block = 0
	}
	return d
}

// errPastSize: the archive decodes to more than its frame header states
// (a second data frame after the first).
var errPastSize = errors.New("more data than the frame header states")

// traceWriter takes the decoded segment, counting, and copies it into dst
// (which has room for size bytes) or, when dst is nil, forgets it.
type traceWriter struct {
	t    *blockTrace
	size int64
	dst  []byte
}

func (w traceWriter) Write(p []byte) (int, error) {
	if w.t.out+int64(len(p)) > w.size {
		// All of p "written": the decoder hands over the output of a
		// block it has found too large along with its error, and a
		// short write would replace that error with io.ErrShortWrite.
		return len(p), errPastSize
	}
	copy(w.dst[min(w.t.out, int64(len(w.dst))):], p)
	w.t.delivered(len(p))
	return len(p), nil
}

// locateDamage decodes the archive again, as a stream, to place the
// failure DecodeAll reported as decErr. The stream decoder is made for
// this call: it is needed only for damaged archives, and one shared
// decoder would serialise verify's workers on its stream. Its window
// (up to the segment's size) is the memory this costs, which is why
// readArchive gives its own buffer back first.
func (a *archiveFile) locateDamage(decErr error) error {
	dec, err := newStreamDecoder()
	if err != nil {
		return a.corrupt("cannot decompress: %v", decErr)
	}
	defer dec.Close()
	t := newBlockTrace(a)
	if err := dec.Reset(t); err != nil {
		return a.corrupt("cannot decompress: %v", decErr)
	}
	if _, err := dec.WriteTo(traceWriter{t: t, size: a.size}); err != nil {
		return a.damage(t, err)
	}
	if t.out != a.size {
		return a.damage(t, io.ErrUnexpectedEOF)
	}
	// The stream decodes where DecodeAll did not: keep DecodeAll's word,
	// with no position rather than a made-up one.
	return a.corrupt("cannot decompress: %v", decErr)
}

// OpenSalvaged is OpenImage for a damaged archive (OpenImage returned an
// *ArchiveDamage): it decodes what it can, ignoring the content checksum,
// and returns an error only when no record can be read (the damage starts
// in the frame header or the segment header).
//
// When only the checksum failed, Data is the whole segment, but some of
// its bytes differ from the ones compressed and the format cannot say
// which. When a block fails to decode, Data is still the segment's size,
// decoded up to Lost (the ArchiveDamage's, or the footer's offset when
// Lost falls inside the footer) and zero from there, and Valid and Lost
// return that offset: the bytes after it are handled as a truncated
// file's padding (see WalkValid), so a frame the loss cuts short is torn,
// never read on into the zeros. Either way, use the image only through
// checks that vouch for every part they use, as each frame's CRC does
// for its record: without it a reader would lose the whole segment for
// one bad record or block.
//
// Memory: one buffer of the segment's size, like OpenImage, plus the
// stream decoder's window: 128 KiB for archives pkg/archive writes at the
// default level, the library's 8 MiB above it, but as much as the
// content decoded for a frame whose window is its whole content (a
// single-segment frame, as EncodeAll writes): the buffer cannot be given
// back first as locateDamage does, it is the result. One decode does it:
// the counted stream decode that places the damage (locateDamage) writes
// into the buffer instead of forgetting.
//
// A lease's break is waited for as OpenNoFollow does.
func OpenSalvaged(path string) (*Image, error) {
	return OpenSalvagedContext(context.Background(), path)
}

// OpenSalvagedContext is OpenSalvaged whose wait for a lease's break ends
// when ctx is done (OpenNoFollowContext).
func OpenSalvagedContext(ctx context.Context, path string) (*Image, error) {
	a, err := openArchiveFile(ctx, path)
	if err != nil {
		return nil, err
	}
	defer a.close()
	buf, err := AllocHuge(int(a.size))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var decoded int64
	err = a.guard(func() (err error) {
		decoded, err = a.salvage(buf)
		return err
	})
	if err != nil {
		_ = Unmap(buf)
		return nil, err
	}
	im := &Image{Path: path, Archived: true, Data: buf, FileSize: a.size, ArchiveSize: int64(len(a.m)), release: func() error { return Unmap(buf) }}
	if decoded < a.size {
		im.lost = decoded
	}
	im.decodeHeader()
	return im, nil
}

// salvage decodes the archive into buf, its content size long and zero,
// ignoring the content checksum, and returns how many bytes of it hold
// content: a.size, or where the content is lost.
func (a *archiveFile) salvage(buf []byte) (int64, error) {
	dec, err := newStreamDecoder(zstd.IgnoreChecksum(true))
	if err != nil {
		return 0, fmt.Errorf("%s: zstd decoder: %w", a.path, err)
	}
	defer dec.Close()
	t := newBlockTrace(a)
	if err := dec.Reset(t); err != nil {
		return 0, a.corrupt("cannot decompress: %v", err)
	}
	_, err = dec.WriteTo(traceWriter{t: t, size: a.size, dst: buf})
	if err == nil && t.out == a.size {
		return a.size, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	d := a.damage(t, err)
	switch {
	case d.Lost >= a.size:
		return a.size, nil // the damage lies after the segment
	case d.Lost <= HeaderSize:
		return 0, d // no frame decodes
	case d.Lost > a.size-FooterSize:
		// A footer is one checksummed unit: part of one is none, and
		// read as one it would be damage found a second time.
		clear(buf[a.size-FooterSize : d.Lost])
		return a.size - FooterSize, nil
	}
	return d.Lost, nil
}
