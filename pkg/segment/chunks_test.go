package segment_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// chunkFile writes a 16 MiB file that OpenImage maps (a header, then
// random bytes: Chunks reads bytes, not frames) and returns its path and
// bytes.
func chunkFile(t *testing.T) (string, []byte) {
	t.Helper()
	img := segment.NewImage(1, 16<<20, 1_600_000_000_000_000_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := segment.HeaderSize; i < len(img); i += 8 {
		v := r.Uint64()
		copy(img[i:], unsafe.Slice((*byte)(unsafe.Pointer(&v)), 8))
	}
	return writeFile(t, filepath.Join(t.TempDir(), segment.FileName(1)), img), img
}

// aliases reports whether b is a view of m.
func aliases(b, m []byte) bool {
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	return p >= lo && p < lo+uintptr(len(m))
}

// TestChunksModes: in every mode a pass gives the file's bytes exactly;
// ReadViews gives views of the mapping, ReadCopies copies in the buffer,
// and ReadProbe a view, then a copy, then from the third chunk on views
// if and only if it chose them (Viewing). What a pass of views released
// behind it is no longer resident.
func TestChunksModes(t *testing.T) {
	p, img := chunkFile(t)
	const size = 1 << 20
	for _, mode := range []segment.ReadMode{segment.ReadProbe, segment.ReadViews, segment.ReadCopies} {
		im, err := segment.OpenImage(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		c := segment.NewChunks(im, f, make([]byte, size), mode)
		var got []byte
		for i, off := 0, int64(0); off < int64(len(img)); i++ {
			b, err := c.ReadFull(p, "read", off, int(min(size, int64(len(img))-off)))
			if err != nil {
				t.Fatal(err)
			}
			view := aliases(b, im.Data)
			want := map[segment.ReadMode]bool{segment.ReadViews: true, segment.ReadCopies: false}[mode]
			if mode == segment.ReadProbe {
				want = i == 0 || (i > 1 && c.Viewing())
			}
			if view != want {
				t.Fatalf("mode %d, chunk %d: view %v, want %v", mode, i, view, want)
			}
			got = append(got, b...)
			off += int64(len(b))
			c.Release(off)
			if r := c.Released(); r > off || (im.Data != nil && off-r >= 2<<20) {
				t.Fatalf("mode %d: released to %d at %d", mode, r, off)
			}
		}
		if !bytes.Equal(got, img) {
			t.Fatalf("mode %d: the pass differs from the file", mode)
		}
		if mode == segment.ReadViews {
			if rss := testfs.MappedRSS(t, im.Data); rss > 2<<20 {
				t.Errorf("%d KiB of the mapping resident after a pass of views released behind it", rss>>10)
			}
		}
		f.Close()
		im.Close()
	}
}

// TestChunksShortCopy: a copy cut short is a *ChangedError at the offset
// that had no data, naming the file; a failed read an error naming the
// file and the offset that wraps the cause, and is not a ChangedError.
// Without an image every chunk is a copy, never longer than the buffer.
func TestChunksShortCopy(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	c := segment.NewChunks(nil, bytes.NewReader(data[:1000]), make([]byte, 4096), segment.ReadProbe)
	if c.Viewing() {
		t.Fatal("views without an image")
	}
	if b, err := c.Read(0, 1<<20); len(b) != 1000 || !bytes.Equal(b, data[:1000]) || err == nil {
		t.Fatalf("Read: %d bytes, %v; want the 1000 the reader has and its EOF", len(b), err)
	}
	_, err := c.ReadFull("x.seg", "read", 500, 2000)
	var ce *segment.ChangedError
	if !errors.As(err, &ce) || ce.Path != "x.seg" || ce.Off != 1000 {
		t.Fatalf("ReadFull past the end: %v; want a ChangedError for x.seg at 1000", err)
	}
	c = segment.NewChunks(nil, failingReaderAt{data, 300}, nil, segment.ReadCopies)
	_, err = c.ReadFull("x.seg", "read", 0, 1000)
	if !errors.Is(err, errFailingRead) || !strings.Contains(fmtErr(err), "x.seg") || errors.As(err, &ce) ||
		!strings.Contains(fmtErr(err), "offset 300") {
		t.Fatalf("ReadFull over a failing read: %v; want the file, offset 300 and the cause", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
