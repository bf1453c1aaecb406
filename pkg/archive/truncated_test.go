package archive_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
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
//
// Cut inside a page, the original reads as zeros to the page's end and
// faults from the next page on: the offset named is the new end, where
// its data stops, not the page that faulted.
func TestOriginalTruncatedWhileResolvedNamesOffset(t *testing.T) {
	for _, cut := range []int64{4096, 4096 + 100} {
		t.Run(strconv.FormatInt(cut, 10), func(t *testing.T) { testOriginalTruncatedWhileResolved(t, cut) })
	}
}

func testOriginalTruncatedWhileResolved(t *testing.T, cut int64) {
	fx := newFixture(t, 3, segSize)
	writeFile(t, fx.zst(1), []byte("not a zstd frame, left by an interrupted run"))
	res := runCutting(t, fx, archive.StepStart, cut)
	if len(res.Segments) == 0 || res.Segments[0].Seq != 1 || res.Segments[0].Outcome != archive.Failed {
		t.Fatalf("segments %+v, want segment 1 failed", res.Segments)
	}
	msg := res.Segments[0].Err.Error()
	if !strings.Contains(msg, fx.seg(1)) || !strings.Contains(msg, "no data at offset "+strconv.FormatInt(cut, 10)) {
		t.Fatalf("error %q: want the file and the offset that had no data, %d", msg, cut)
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
	res := runCutting(t, fx, archive.StepStart, cut)
	want := fx.seg(1) + ": changed while it was being archived (truncated?): no data at offset " + strconv.Itoa(cut)
	if len(res.Segments) == 0 || res.Segments[0].Seq != 1 || res.Segments[0].Err == nil || res.Segments[0].Err.Error() != want {
		t.Fatalf("segments %+v, want segment 1 failed: %q", res.Segments, want)
	}
	if !exists(fx.seg(1)) || !exists(fx.zst(1)) {
		t.Errorf("original %v, verified archive %v: both must stay", exists(fx.seg(1)), exists(fx.zst(1)))
	}
}

// An original truncated while it is being archived (after the checks that
// made it eligible) fails that segment with an error naming the file and
// the offset that had no data, whether a read of the file (compressing)
// or of its mapping (here the digest of a leftover archive's original
// that does not verify) found it: no archive and no temporary file are
// left for it, and the other segments are archived. Truncated once its
// archive is in place, before it is removed, it is kept beside the
// archive, and the error names the offset too: the file's new end. (That
// one said "changed while it was being archived", no offset.)
//
// The original is read a chunk at a time, the first of each pass
// through the mapping and the second with pread, to time them
// (segment.Chunks): compression reads 256 KiB chunks, the comparison as
// much as a decoded block (at most 128 KiB). In a segment of 1 MiB a cut
// in the first chunk is met by a view, one in the second by a copy, one
// further on by whichever the pass chose. A fault in the comparison left
// the temporary archive behind (the cleanup ran only on an error). A
// 64 KiB segment is one view in each pass: cut inside its last page, it
// reads as zeros from the cut on, without a fault, and the comparison
// called the archive corrupt (a summary that does not match, or a
// difference at the cut) instead of naming the original's new end.
func TestTruncatedOriginalFails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		leftover  []byte       // the archive beside the original, if any
		at        archive.Step // when the original is truncated
		size, cut int64
	}{
		{"read", nil, archive.StepStart, segSize, segSize / 2},
		{"mapped", []byte("not an archive"), archive.StepStart, segSize, segSize / 2},
		{"archived", nil, archive.StepDirSynced, segSize, segSize / 2},
		{"compress view", nil, archive.StepStart, 1 << 20, 100 << 10},
		{"compress copy", nil, archive.StepStart, 1 << 20, 300 << 10},
		{"compress chosen", nil, archive.StepStart, 1 << 20, 600 << 10},
		{"compare view", nil, archive.StepSynced, 1 << 20, 100 << 10},
		{"compare copy", nil, archive.StepSynced, 1 << 20, 200 << 10},
		{"compare chosen", nil, archive.StepSynced, 1 << 20, 600 << 10},
		{"compress view inside a page", nil, archive.StepStart, 1 << 20, 100<<10 + 100},
		{"compare view inside a page", nil, archive.StepSynced, 1 << 20, 100<<10 + 100},
		{"compress view inside the last page", nil, archive.StepStart, 64 << 10, 64<<10 - 100},
		{"compare view inside the last page", nil, archive.StepSynced, 64 << 10, 64<<10 - 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := tc.cut
			fx := newFixture(t, 3, tc.size)
			if tc.leftover != nil {
				writeFile(t, fx.zst(1), tc.leftover)
			}
			res := runCutting(t, fx, tc.at, cut)
			if res.Failed != 1 || res.Done != 1 || res.Segments[0].Err == nil {
				t.Fatalf("failed %d done %d: %+v", res.Failed, res.Done, res.Segments)
			}
			// A read through the mapping faults from the first page
			// past the cut on: every path names the cut itself, where
			// the original's data stops.
			msg := res.Segments[0].Err.Error()
			prefix := fx.seg(1) + ": changed while it was being archived (truncated?): no data at offset "
			num, rest, _ := strings.Cut(strings.TrimPrefix(msg, prefix), ";")
			off, perr := strconv.ParseInt(num, 10, 64)
			if !strings.HasPrefix(msg, prefix) || perr != nil || off != cut {
				t.Fatalf("segment 1: %q; want %q and offset %d", msg, prefix, cut)
			}
			archived := tc.at == archive.StepDirSynced
			if archived && rest != " original kept beside "+fx.zst(1) {
				t.Errorf("segment 1: %q; want the original kept beside its archive", msg)
			}
			if !exists(fx.seg(1)) || exists(fx.zst(1)+segment.TempExt) || !exists(fx.zst(2)) || exists(fx.zst(1)) != (tc.leftover != nil || archived) {
				t.Errorf("want segment 1 as its (truncated) original only (and the leftover, or its archive), segment 2 archived: seg %v tmp %v zst2 %v zst1 %v", exists(fx.seg(1)), exists(fx.zst(1)+segment.TempExt), exists(fx.zst(2)), exists(fx.zst(1)))
			}
		})
	}
}

// runCutting runs compress-finished over fx with one job, cutting
// segment 1's original to cut bytes when its work reaches step.
func runCutting(t *testing.T, fx *fixture, step archive.Step, cut int64) *archive.Result {
	t.Helper()
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 1 && ev.Step == step {
			if err := os.Truncate(ev.Original, cut); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
