package segment

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/edsrzf/mmap-go"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
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
// MaxSegmentSize, is refused before anything is allocated.

func init() { openArchive = ReadArchive }

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
	decoderOnce.Do(func() {
		decoder, decoderErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(MaxSegmentSize),
			zstd.WithDecoderMaxWindow(MaxSegmentSize),
			zstd.WithDecodeAllCapLimit(true))
	})
	return decoder, decoderErr
}

// ReadArchive decompresses the segment archive at path and returns the
// segment file's bytes. Symbolic links are never followed. Errors name the
// file; an archive that is damaged (bad frame, checksum mismatch, wrong
// size) gives an error wrapping ErrCorrupt, an I/O failure one that does
// not. The result is not checked as a segment: OpenImage does that.
//
// pkg/archive uses it to verify an archive before it may replace the
// original, so what is verified is exactly what readers will read.
func ReadArchive(path string) ([]byte, error) { return ReadArchiveInto(path, nil) }

// ReadArchiveInto is ReadArchive decompressing into buf when its capacity
// is at least the segment's size, else into a new buffer of exactly that
// size. Callers that read many archives (compress-finished verifying each
// one it writes) reuse one buffer instead of faulting in a fresh one each
// time.
func ReadArchiveInto(path string, buf []byte) (data []byte, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: is a symbolic link; segment links are never followed", path)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	badf := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s: %w", path, fmt.Sprintf(format, a...), ErrCorrupt)
	}
	if st.Size() == 0 {
		return nil, badf("empty archive")
	}
	if st.Size() > maxArchiveSize(MaxSegmentSize) {
		return nil, badf("archive is %d bytes, larger than any segment archive", st.Size())
	}
	m, err := mmap.Map(f, mmap.RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	defer m.Unmap()

	// The file is mapped: if it is truncated while being read, touching the
	// missing pages raises SIGBUS, which would kill the process. Turn it
	// into an error for this goroutine (DecodeAll decodes on the caller's
	// goroutine).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			re, ok := r.(runtime.Error)
			if !ok || !isFault(re) {
				panic(r)
			}
			data, err = nil, fmt.Errorf("%s: archive changed while it was read: %v", path, re)
		}
	}()

	var zh zstd.Header
	if err := zh.Decode(m); err != nil {
		return nil, badf("not a zstd frame: %v", err)
	}
	switch {
	case zh.Skippable:
		return nil, badf("archive starts with a skippable frame, not a segment")
	case zh.DictionaryID != 0:
		return nil, badf("archive needs zstd dictionary %d; segment archives use none", zh.DictionaryID)
	case !zh.HasFCS:
		return nil, badf("zstd frame header does not state the decompressed size")
	case zh.FrameContentSize == 0 || zh.FrameContentSize > MaxSegmentSize:
		return nil, badf("decompressed size %d is not a segment size (at most %d)", zh.FrameContentSize, MaxSegmentSize)
	}
	size := int64(zh.FrameContentSize)
	if size/maxBlockExpansion > st.Size() {
		return nil, badf("frame header claims %d bytes from only %d compressed bytes", size, st.Size())
	}
	if st.Size() > maxArchiveSize(size) {
		return nil, badf("archive is %d bytes, too large for %d bytes of content", st.Size(), size)
	}
	dec, err := archiveDecoder()
	if err != nil {
		return nil, fmt.Errorf("%s: zstd decoder: %w", path, err)
	}
	if int64(cap(buf)) >= size {
		buf = buf[:0:size]
	} else {
		buf = make([]byte, 0, size)
	}
	out, err := dec.DecodeAll(m, buf)
	if err != nil {
		return nil, badf("cannot decompress: %v", err)
	}
	if int64(len(out)) != size {
		return nil, badf("decompressed %d bytes, frame header says %d", len(out), size)
	}
	return out, nil
}

// isFault reports whether a runtime panic is a memory fault raised because
// of SetPanicOnFault (they carry the faulting address).
func isFault(e runtime.Error) bool {
	_, ok := e.(interface{ Addr() uintptr })
	return ok
}
