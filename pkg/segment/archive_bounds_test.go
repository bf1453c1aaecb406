package segment_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// FORMAT.md section 10: an archive's first frame must state a content size
// "at most 32,768 times the file's size", checked before decompressing (so
// before the buffer of that size is allocated); exactly, not rounded (an
// integer division once let through any size up to 32768*(n+1)-1).
func TestArchiveContentSizeBound(t *testing.T) {
	n := int64(len(fakeHeader(t, 0))) // 16 bytes
	for _, size := range []int64{32768*n + 8, 32768*(n+1) - 8} {
		b := fakeHeader(t, uint64(size))
		p := writeFile(t, filepath.Join(t.TempDir(), segment.ArchiveName(1)), b)
		_, err := segment.OpenImage(p)
		if err == nil || !strings.Contains(err.Error(), "compressed bytes") {
			t.Errorf("%d-byte archive stating %d bytes (> 32768 x %d = %d): got %v, want refused before decompressing",
				len(b), size, len(b), 32768*int64(len(b)), err)
		}
	}
}

// FORMAT.md section 10: an archive may be up to content + content/1024 +
// 4096 bytes (incompressible data is stored in raw blocks, a little larger
// than the segment), so the archive of a full-size (1 GiB) segment of
// incompressible records is slightly larger than 1 GiB; openArchiveFile
// accepts that, and so must ReadFooter and ReadHeader, which read only the
// summary (they once refused any file larger than MaxSegmentSize as
// corrupt). The file here is sparse: only its summary (the last 212 bytes)
// is real, which is all ReadFooter reads.
func TestSummaryOfArchiveLargerThanMaxSegment(t *testing.T) {
	orig := sealedSegment(t, 1, 20)
	want, err := segment.DecodeFooter(orig, segment.Header{Seq: 1, Size: int64(len(orig))})
	if err != nil {
		t.Fatal(err)
	}
	sum := segment.AppendSummary(nil, orig)
	p := filepath.Join(t.TempDir(), segment.ArchiveName(1))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Within the spec's bound for 1 GiB of content: 1 GiB + 1 MiB + 4 KiB.
	size := int64(segment.MaxSegmentSize) + segment.MaxSegmentSize/2048
	if _, err := f.WriteAt(sum, size-int64(len(sum))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { os.Remove(p) })

	got, err := segment.ReadFooter(p)
	if err != nil {
		t.Fatalf("ReadFooter of a %d-byte archive (the bound is %d): %v (ErrCorrupt: %v)",
			size, segment.MaxSegmentSize+segment.MaxSegmentSize/1024+4096, err, errors.Is(err, segment.ErrCorrupt))
	}
	if got != want {
		t.Fatalf("footer %+v, want %+v", got, want)
	}
	if _, err := segment.ReadHeader(p); err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
}

// FORMAT.md section 10: "the whole file, summary aside, decompresses to
// exactly that size in one pass, so a second data frame is damage."
// DecodeAll decodes concatenated frames, and one that decodes to nothing
// adds no bytes: a second (empty) data frame is found by walking the first
// frame's blocks.
func TestSecondEmptyDataFrameIsDamage(t *testing.T) {
	orig := sealedSegment(t, 1, 20)
	second := compress(t, nil)
	if len(second) == 0 {
		t.Fatal("the encoder wrote no frame for empty input")
	}
	b := append(append([]byte{}, compress(t, orig)...), second...)
	b = segment.AppendSummary(b, orig)
	p := writeFile(t, filepath.Join(t.TempDir(), segment.ArchiveName(1)), b)
	im, err := segment.OpenImage(p)
	if err == nil {
		im.Close()
		t.Fatalf("archive with a second zstd data frame (% x) read as valid", second)
	}
}

// ArchiveComparer promises that what it accepts readers can read ("the
// checks of the archive file and its frame header are ReadArchive's"):
// compress-finished removes the original once Compare passes, including
// when it resolves an archive an interrupted run left beside its
// original. An archive with a second (empty) zstd data frame after the
// segment's is damage to readers (FORMAT.md section 10); the comparer
// refuses it too, or the original would go and only a damaged archive
// would be left.
func TestComparerRefusesSecondDataFrame(t *testing.T) {
	orig := sealedSegment(t, 1, 20)
	b := append(append([]byte{}, compress(t, orig)...), compress(t, nil)...)
	b = segment.AppendSummary(b, orig)
	p := writeFile(t, filepath.Join(t.TempDir(), segment.ArchiveName(1)), b)
	_, rerr := segment.OpenImage(p)
	if rerr == nil {
		t.Fatal("OpenImage accepted the archive; nothing to compare with")
	}
	c, err := segment.NewArchiveComparer()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Compare(p, orig); err == nil {
		t.Errorf("Compare accepted an archive OpenImage refuses (%v): compress-finished would remove the original", rerr)
	}
	if err := c.CompareReader(p, b, "orig.seg", copies(bytesReaderAt(orig)), int64(len(orig))); err == nil {
		t.Errorf("CompareReader accepted an archive OpenImage refuses (%v)", rerr)
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
