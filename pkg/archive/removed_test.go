package archive_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
)

// These tests play a retention job that removes old segments while a run
// works on them (oldest first, as `find -delete` by age would): the
// removals are made from the Observer, at the step named, so each lands
// at a known point of the protocol.

func removeFiles(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
	}
}

// A segment removed entirely (original, and archive if it had one) after
// the plan was made and before the run came to it is skipped, not failed.
// One whose original is gone but whose archive is still there stays a
// failure: that is not a segment something removed.
func TestRemovedAfterPlanIsSkipped(t *testing.T) {
	fx := newFixture(t, 5, segSize)
	// 2 and 3 as an interrupted run left them: original beside archive.
	writeFile(t, fx.zst(2), compressed(t, fx.files[2]))
	writeFile(t, fx.zst(3), compressed(t, fx.files[3]))
	steps := map[uint64][]string{}
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Step == archive.StepPlanned {
			removeFiles(t, fx.seg(1), fx.seg(2), fx.zst(2), fx.seg(3))
		}
		steps[ev.Seq] = append(steps[ev.Seq], ev.Step.String())
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]archive.SegmentResult{}
	for _, s := range res.Segments {
		got[s.Seq] = s
	}
	for _, seq := range []uint64{1, 2} {
		s := got[seq]
		if s.Outcome != archive.Skipped || s.Err != nil || !strings.Contains(s.Reason, "removed while compress-finished ran") {
			t.Errorf("segment %d: %+v, want skipped as removed", seq, s)
		}
		if !slices.Equal(steps[seq], []string{"skipped"}) {
			t.Errorf("segment %d: steps %v, want [skipped]", seq, steps[seq])
		}
	}
	if s := got[3]; s.Outcome != archive.Failed || !errors.Is(s.Err, fs.ErrNotExist) || !exists(fx.zst(3)) {
		t.Errorf("segment 3 (archive left): %+v, want failed, its archive kept", s)
	}
	if s := got[4]; s.Outcome != archive.Compressed || res.Done != 1 || res.Failed != 1 || res.Skipped != 2 {
		t.Errorf("segment 4: %+v; done %d failed %d skipped %d, want 1 1 2", s, res.Done, res.Failed, res.Skipped)
	}
	if e := res.Err(); e == nil || strings.Contains(e.Error(), fx.seg(1)) || strings.Contains(e.Error(), fx.seg(2)) {
		t.Errorf("Err() = %v, want segment 3's failure only", e)
	}
	fx.forget(1, 2)
	fx.checkGone(t, 1, 2)
	delete(fx.files, 3) // its archive only, as the test left it: checked above
	fx.checkSafe(t)
}
