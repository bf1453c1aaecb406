package verify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Review: a hole removed in the middle while an older segment stays is a
// gap (doc.go: "a gap only if a segment older than it is still there"),
// even when the segment right before the hole was read before it went too.
// removedWhileRead looks only at prev, so segments 2..4 removed after 2 was
// read, with 1 still there, leave a hole 2..4 between 1 and 5 that verify
// does not report: exit 0 on a log that has a gap when verify returns.
func TestReviewHoleAfterAnOlderSegmentIsAGap(t *testing.T) {
	l := newTestLog(t)
	for range 6 {
		l.sealed(5)
	}
	calls := 0
	o := Options{Workers: 1, Progress: func(_, _ int64) {
		calls++
		if calls != 2 { // segment 2 has been read; 4 is opened after this
			return
		}
		for _, s := range []uint64{2, 3, 4} {
			if err := os.Remove(filepath.Join(l.dir, segment.FileName(s))); err != nil {
				t.Error(err)
			}
		}
	}}
	rep := mustDir(t, l.dir, o)
	if _, err := os.Stat(filepath.Join(l.dir, segment.FileName(1))); err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Findings[Gap] != 1 || rep.ExitCode(false) != 1 {
		t.Fatalf("segment 1 still there, 2..4 gone: exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}
}
