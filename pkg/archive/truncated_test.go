package archive_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
)

// TestOriginalTruncatedWhileResolvedNamesOffset (review): an original
// truncated while compress-finished reads it through its mapping is
// reported, as FORMAT.md (section 12, assumption 8) and Image.Guard say of
// every reader of segments, with the file and the offset that had no
// data. The run used segment.Guard and dropped the fault ("changed while
// it was being archived (truncated?)", no offset), unlike the plan, which
// reads the same footer under Image.Guard. The mapped read that faults is
// the digest of the original, taken when the archive left beside it by an
// interrupted run does not verify: the original is truncated when the
// segment starts, after the plan.
func TestOriginalTruncatedWhileResolvedNamesOffset(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	writeFile(t, fx.zst(1), []byte("not a zstd frame, left by an interrupted run"))
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 1 && ev.Step == archive.StepStart {
			if err := os.Truncate(fx.seg(1), 4096); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Segments) == 0 || res.Segments[0].Seq != 1 || res.Segments[0].Outcome != archive.Failed {
		t.Fatalf("segments %+v, want segment 1 failed", res.Segments)
	}
	msg := res.Segments[0].Err.Error()
	if !strings.Contains(msg, fx.seg(1)) || !strings.Contains(msg, "no data at offset") {
		t.Fatalf("error %q: want the file and the offset that had no data", msg)
	}
	if !exists(fx.seg(1)) || !exists(fx.zst(1)) {
		t.Errorf("original %v, leftover archive %v: both must stay", exists(fx.seg(1)), exists(fx.zst(1)))
	}
}

// TestOriginalCutInLastPageKeepsVerifiedArchive (review): an original cut
// inside its last page while its leftover archive is verified is a
// changed original, and the archive stays. Read through its mapping
// (segment.Chunks' views: a 64 KiB segment is one view), the cut page
// reads as zeros past the new end, without a fault: the comparison called
// the good archive corrupt, and, as the original's digest ends before the
// cut footer, resolve removed it to compress the truncated original again.
func TestOriginalCutInLastPageKeepsVerifiedArchive(t *testing.T) {
	const size = 64 << 10
	fx := newFixture(t, 3, size)
	if _, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, KeepOriginal: true}); err != nil {
		t.Fatal(err)
	}
	if !exists(fx.seg(1)) || !exists(fx.zst(1)) {
		t.Fatal("want segment 1 as its original and its archive")
	}
	const cut = size - 100 // inside the footer, after the END frame
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 1 && ev.Step == archive.StepStart {
			if err := os.Truncate(fx.seg(1), cut); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := fx.seg(1) + ": changed while it was being archived (truncated?): no data at offset " + strconv.Itoa(cut)
	if len(res.Segments) == 0 || res.Segments[0].Seq != 1 || res.Segments[0].Err == nil || res.Segments[0].Err.Error() != want {
		t.Fatalf("segments %+v, want segment 1 failed: %q", res.Segments, want)
	}
	if !exists(fx.seg(1)) || !exists(fx.zst(1)) {
		t.Errorf("original %v, verified archive %v: both must stay", exists(fx.seg(1)), exists(fx.zst(1)))
	}
}
