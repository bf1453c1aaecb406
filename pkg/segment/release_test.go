package segment

import (
	"bytes"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
)

// TestReleaseDropsMappedPages: Release takes a mapped segment's pages out
// of this process's resident set, whole 2 MiB blocks only, and the bytes
// read the same afterwards (they come back from the page cache).
func TestReleaseDropsMappedPages(t *testing.T) {
	const size = 8 << 20
	img := NewImage(testSeq, size, 1)
	for i := HeaderSize; i < size; i += 4096 {
		img[i] = byte(i >> 12)
	}
	im := touchedImage(t, img)
	before := testfs.MappedRSS(t, im.Data)
	if before < size/2 {
		t.Fatalf("only %d KiB of the touched %d KiB mapping resident", before>>10, size>>10)
	}
	// From 1 MiB to 7.5 MiB: the blocks from 2 to 6 MiB.
	if got := im.Release(1<<20, 7<<20+1<<19); got != 6<<20 {
		t.Fatalf("Release(1 MiB, 7.5 MiB) released up to %d, want 6 MiB", got)
	}
	if after := testfs.MappedRSS(t, im.Data); after > before-(4<<20) {
		t.Fatalf("resident %d KiB before Release of 4 MiB, %d KiB after", before>>10, after>>10)
	}
	if got := im.Release(3<<20, 3<<20+4096); got != 3<<20 {
		t.Fatalf("Release of less than a block released up to %d", got)
	}
	if !bytes.Equal(im.Data, img) {
		t.Fatal("the bytes changed after Release")
	}
}

// TestReleaseLeavesCopies: an image that holds a copy (a file shorter than
// its header says, padded in memory) is not released: MADV_DONTNEED would
// zero its private memory.
func TestReleaseLeavesCopies(t *testing.T) {
	const size = 8 << 20
	img := NewImage(testSeq, size, 1)
	for i := HeaderSize; i < size; i++ {
		img[i] = byte(i)
	}
	const keep = 6 << 20
	p := writeSegment(t, t.TempDir(), testSeq, img[:keep])
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if int64(len(im.Data)) != size {
		t.Fatalf("image of %d bytes, want the header's %d", len(im.Data), size)
	}
	if got := im.Release(0, size); got != 0 {
		t.Fatalf("Release of a copy released up to %d", got)
	}
	if !bytes.Equal(im.Data[:keep], img[:keep]) {
		t.Fatal("Release changed a copy")
	}
}

// touchSink keeps the test's loads from being optimised away.
var touchSink byte

// touchedImage writes img to a segment file and returns its image with
// every page of the mapping touched (closed when the test ends).
func touchedImage(t *testing.T, img []byte) *Image {
	t.Helper()
	im, err := OpenImage(writeSegment(t, t.TempDir(), testSeq, img))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	for i := 0; i < len(im.Data); i += 4096 {
		touchSink += im.Data[i]
	}
	return im
}

// TestReleaseOutOfRange: Release is given a range reaching outside Data
// (an exported method: never a panic on bad input). A negative lo
// panicked, slicing Data below 0; a hi past the end released nothing,
// not even the blocks inside Data.
func TestReleaseOutOfRange(t *testing.T) {
	const size = 8 << 20
	img := NewImage(testSeq, size, 1)
	p := writeSegment(t, t.TempDir(), testSeq, img)
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if got := im.Release(-4<<20, 2<<20); got != 2<<20 {
		t.Errorf("Release(-4 MiB, 2 MiB) released up to %d, want 2 MiB", got)
	}
	if got := im.Release(6<<20, 1<<40); got != size {
		t.Errorf("Release(6 MiB, 1 TiB) released up to %d, want the end, 8 MiB", got)
	}
	if got := im.Release(1<<40, 2<<40); got != 1<<40 {
		t.Errorf("Release(1 TiB, 2 TiB) released up to %d, want nothing", got)
	}
	if !bytes.Equal(im.Data, img) {
		t.Fatal("the bytes changed after Release")
	}
}

// TestReleaseLastPartialBlock: a range reaching the end of a segment
// whose size is not a multiple of 2 MiB gives back its last block too,
// whole or not (the footer's, which verify reads before its pass): it
// stayed resident, the last block never being whole.
func TestReleaseLastPartialBlock(t *testing.T) {
	const size = 3<<20 + 64<<10
	img := NewImage(testSeq, size, 1)
	im := touchedImage(t, img)
	if got := im.Release(size-FooterSize, size); got != size-FooterSize {
		t.Errorf("Release of the footer alone released up to %d, want nothing", got)
	}
	if got := im.Release(2<<20, size); got != size {
		t.Errorf("Release(2 MiB, the end) released up to %d, want the end, %d", got, size)
	}
	if rss := testfs.MappedRSS(t, im.Data); rss > 2<<20 {
		t.Errorf("%d KiB of the mapping resident after the blocks from 2 MiB on were released; want at most the first", rss>>10)
	}
	if !bytes.Equal(im.Data, img) {
		t.Fatal("the bytes changed after Release")
	}
}
