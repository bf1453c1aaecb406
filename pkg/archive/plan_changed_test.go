package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// sealedSegment writes segment 1, sealed, into a new directory and returns
// its path and an image of it, opened before anything changes it.
func sealedSegment(t *testing.T) (string, *segment.Image) {
	t.Helper()
	now := time.Now().UnixNano()
	img := segment.NewImage(1, segment.MinSegmentSize, now)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, now, []byte("a record"))
	segment.PutEnd(img, 1, off, now)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), segment.FileName(1))
	if err := os.WriteFile(p, img, 0o640); err != nil {
		t.Fatal(err)
	}
	im, err := segment.OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, im
}

// wantUnreadable checks that skip fails the segment at path as changed
// while it was read, not as damaged.
func wantUnreadable(t *testing.T, moment string, skip Skip, path string) {
	t.Helper()
	var ce *segment.ChangedError
	if skip.Damaged || !errors.As(skip.Err, &ce) || ce.Path != path ||
		!strings.HasPrefix(skip.Reason, "cannot read: changed while it was read") {
		t.Fatalf("truncated at the %s read: %+v; want a failure (Err) saying the file changed while it was read", moment, skip)
	}
}

// A segment file truncated while the plan inspects it is failed, not
// skipped as damaged, whether the truncation comes before OpenImage reads
// its header or before the footer is read. The header's moment was
// "cannot open: ... changed while it was read", Damaged: a warning, exit
// 0, where the footer's, a moment later, failed the run (exit 1).
//
// Nothing can truncate the file between OpenImage's fstat and its read
// of the header from outside: the test gives inspectImage what OpenImage
// returns then, the error of a guarded read of the header of the file's
// mapping once the file is empty (OpenImage's own read, decodeMapped).
// The footer's moment is the real one: the file is truncated after
// OpenImage returned.
func TestPlanTruncatedUnderInspect(t *testing.T) {
	p, im := sealedSegment(t)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	err := im.Guard(func() { _, _ = segment.DecodeHeader(im.Data) })
	im.Close()
	if _, ok := errors.AsType[*segment.ChangedError](err); !ok {
		t.Fatalf("reading the header of the truncated file: %v; want a ChangedError", err)
	}
	_, _, skip := inspectImage(p, nil, err)
	wantUnreadable(t, "header", skip, p)

	p, im = sealedSegment(t)
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	_, _, skip = inspectImage(p, im, nil)
	wantUnreadable(t, "footer", skip, p)
}

// An original truncated between its mapping (OpenImage, whose size the
// work goes by) and the descriptor its bytes are read through
// (openOriginal) fails with the file and its new end, the offset that has
// no data, as a read meeting the cut says it. It said "changed while it
// was being archived", no offset. The moment cannot be reached from
// outside the run: the test calls openOriginal as the run does, the file
// truncated after the image and Lstat were taken.
func TestOpenOriginalTruncatedNamesOffset(t *testing.T) {
	p, im := sealedSegment(t)
	defer im.Close()
	before, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	f, err := openOriginal(context.Background(), p, before, int64(len(im.Data)))
	if f != nil {
		f.Close()
	}
	ce, ok := errors.AsType[*segment.ChangedError](err)
	if !ok || ce.Path != p || ce.Off != 4096 || !strings.HasPrefix(err.Error(), p+": changed while it was being archived (truncated?): no data at offset 4096") {
		t.Fatalf("openOriginal of the truncated original: %v; want a ChangedError naming %s at offset 4096", err, p)
	}
}
