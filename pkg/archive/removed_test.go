package archive_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/verify"
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

// checkNoGap asserts that verify finds nothing fatal in the log, a gap
// above all (the newest segment, unsealed and no writer alive, is residue).
func checkNoGap(t *testing.T, dir string) {
	t.Helper()
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Class == verify.Gap || f.Fatal() {
			t.Errorf("verify: %s %s: %s", f.Class, f.Path, f.Reason)
		}
	}
}

// A retention job removes segments 1 to 3 (oldest first) while segment 1,
// the only one the run compresses (--keep 3), is being archived: at the
// step given, before or after its archive is renamed into place. The
// archive must not stay: it would bring back a segment the job deleted,
// with a hole after it (2 and 3 gone, 4 there), which readers and verify
// report as a gap. The segment is skipped, not failed.
func TestRemovedWhileArchivingLeavesNoArchive(t *testing.T) {
	pristine := newFixture(t, 5, segSize)
	for _, tc := range []struct {
		at           archive.Step
		keepOriginal bool
		want         []string // segment 1's steps
		reason       string
	}{
		{archive.StepVerified, false, []string{"start", "written", "synced", "verified", "skipped"}, "not put in place"},
		{archive.StepRenamed, false, []string{"start", "written", "synced", "verified", "renamed", "dir-synced", "archive-removed", "skipped"}, "removed again"},
		{archive.StepDirSynced, false, []string{"start", "written", "synced", "verified", "renamed", "dir-synced", "archive-removed", "skipped"}, "removed again"},
		{archive.StepDirSynced, true, []string{"start", "written", "synced", "verified", "renamed", "dir-synced", "archive-removed", "skipped"}, "removed again"},
	} {
		name := tc.at.String()
		if tc.keepOriginal {
			name += "-keep-original"
		}
		t.Run(name, func(t *testing.T) {
			fx := pristine.clone(t)
			var steps []string
			res, err := archive.Run(context.Background(), fx.dir, archive.Options{Keep: 3, KeepOriginal: tc.keepOriginal,
				Observer: func(ev archive.Event) {
					if ev.Seq != 1 {
						return
					}
					steps = append(steps, ev.Step.String())
					if ev.Step == tc.at {
						removeFiles(t, fx.seg(1), fx.seg(2), fx.seg(3))
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Segments) != 1 {
				t.Fatalf("%+v, want segment 1 only", res.Segments)
			}
			if res.Skipped != 1 || res.Failed != 0 || res.Done != 0 || res.Err() != nil {
				t.Errorf("skipped %d failed %d done %d: %v", res.Skipped, res.Failed, res.Done, res.Err())
			}
			if s := res.Segments[0]; s.Outcome != archive.Skipped || !strings.Contains(s.Reason, tc.reason) || s.OriginalRemoved {
				t.Errorf("segment 1: %+v", s)
			}
			if !slices.Equal(steps, tc.want) {
				t.Errorf("steps %v, want %v", steps, tc.want)
			}
			fx.forget(1, 2, 3)
			fx.checkGone(t, 1, 2, 3)
			checkNoGap(t, fx.dir)
			fx.checkSafe(t)
			fx.checkRecords(t)
		})
	}
}

// Only an original that has no name left counts as removed. One replaced
// by another file under its name, or moved out of the log directory, is
// not: the archive is put in place and the segment fails as changed or
// missing, as before; nothing is removed.
func TestReplacedOrMovedOriginalIsNotRemoved(t *testing.T) {
	pristine := newFixture(t, 3, segSize)
	for name, change := range map[string]func(fx *fixture){
		"replaced": func(fx *fixture) {
			tmp := fx.seg(1) + ".copy"
			writeFile(t, tmp, fx.files[1])
			if err := os.Rename(tmp, fx.seg(1)); err != nil {
				t.Error(err)
			}
		},
		"moved": func(fx *fixture) {
			if err := os.Rename(fx.seg(1), filepath.Join(t.TempDir(), "moved.seg")); err != nil {
				t.Error(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			fx := pristine.clone(t)
			res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
				if ev.Seq == 1 && ev.Step == archive.StepVerified {
					change(fx)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != 1 || res.Skipped != 0 || res.Segments[0].Outcome != archive.Failed {
				t.Fatalf("failed %d skipped %d: %+v", res.Failed, res.Skipped, res.Segments)
			}
			if !exists(fx.zst(1)) || exists(fx.seg(1)) != (name == "replaced") {
				t.Errorf("segment 1: original %v archive %v", exists(fx.seg(1)), exists(fx.zst(1)))
			}
			fx.checkSafe(t)
			fx.checkRecords(t)
		})
	}
}
