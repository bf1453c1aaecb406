package verify

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestWindowReadsEachByteAboutOnce: the window is moved on only when a
// frame runs past its end, not at every slot the walker takes over. A
// sealed segment with a damaged record every 50 was read ~30 times over
// (a 1 MiB pread at every damaged frame).
func TestWindowReadsEachByteAboutOnce(t *testing.T) {
	const seq, size = 1, 8 << 20
	img := segment.NewImage(seq, size, baseCreated)
	off := int64(segment.HeaderSize)
	var offs []int64
	for i := 0; off+segment.FrameSize(100) <= segment.DataLimit(size); i++ {
		offs = append(offs, off)
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), bytes.Repeat([]byte{'r'}, 100))
	}
	segment.PutEnd(img, seq, off, baseCreated+second)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(offs); i += 50 {
		img[offs[i]+segment.FrameHeaderSize+5] ^= 1 // torn: its CRC fails
	}
	path := filepath.Join(t.TempDir(), segment.FileName(seq))
	src := &countingReaderAt{r: bytes.NewReader(img)}
	w := &window{src: src, buf: make([]byte, 256<<10)}
	got := checkThrough(path, img, Options{}, w)
	if want := checkThrough(path, img, Options{}, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("through the window:\n%s\nthrough the mapping:\n%s", summary(got), summary(want))
	}
	if got.Totals.Findings[Torn] == 0 {
		t.Fatal("no finding: the damage did not take")
	}
	if src.bytes > 2*size {
		t.Fatalf("read %d MiB through the window (%d reads) for a %d MiB segment", src.bytes>>20, src.reads, size>>20)
	}
}

type countingReaderAt struct {
	r            *bytes.Reader
	reads, bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.reads++
	c.bytes += int64(n)
	return n, err
}
