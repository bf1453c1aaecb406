package verify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// removeOnFirstProgress returns options that check one segment at a time
// and remove the segments seqs of dir when the first one is done, as a
// retention job would while verify runs. The worker has then taken at most
// the second job, so every segment from the third on is opened after the
// removal.
func removeOnFirstProgress(t *testing.T, dir string, seqs ...uint64) Options {
	done := false
	return Options{Workers: 1, Progress: func(_, _ int64) {
		if done {
			return
		}
		done = true
		for _, s := range seqs {
			if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
				t.Error(err)
			}
		}
	}}
}

// Segments removed oldest first while verify reads the log leave no gap:
// the log now starts after them. It reported "segments 3 to 3 are
// missing" (or 2 to 3), a gap, and exited 1 on an intact log.
func TestRetentionWhileVerifying(t *testing.T) {
	l := newTestLog(t)
	for range 6 {
		l.sealed(5)
	}
	rep := mustDir(t, l.dir, removeOnFirstProgress(t, l.dir, 1, 2, 3))
	if len(rep.Findings) != 0 || rep.ExitCode(false) != 0 {
		t.Fatalf("exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}
	for _, s := range rep.Segments {
		if s.Seq == 3 {
			t.Fatalf("segment 3, removed before it was opened, is in the report: %+v", s)
		}
	}
}

// A segment removed while an older one stays is a gap, and so is one
// missing when the directory was listed, whatever is removed meanwhile.
func TestRemovedInTheMiddleIsAGap(t *testing.T) {
	l := newTestLog(t)
	for range 6 {
		l.sealed(5)
	}
	rep := mustDir(t, l.dir, removeOnFirstProgress(t, l.dir, 3))
	if !has(rep, Gap, 3, 0) || rep.ExitCode(false) != 1 {
		t.Fatalf("exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}

	l = newTestLog(t)
	l.sealed(5)
	l.sealed(5)
	l.next = 4 // 3 never written
	for range 3 {
		l.sealed(5)
	}
	rep = mustDir(t, l.dir, removeOnFirstProgress(t, l.dir, 1, 2))
	// The gap is reported from 2 or 3 on, depending on whether 2 was read
	// before its removal.
	if rep.Totals.Findings[Gap] != 1 || rep.ExitCode(false) != 1 {
		t.Fatalf("listing-time gap: exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}

	// Segments 2 to 4 removed after 2 was read, while 1 stays: a hole
	// between 1 and 5, though every number in it was listed and the
	// segment just before it was read (it looked only at that one).
	l = newTestLog(t)
	for range 6 {
		l.sealed(5)
	}
	calls := 0
	o := Options{Workers: 1, Progress: func(_, _ int64) {
		if calls++; calls != 2 { // segment 2 has been read; 4 is opened after this
			return
		}
		for _, s := range []uint64{2, 3, 4} {
			if err := os.Remove(filepath.Join(l.dir, segment.FileName(s))); err != nil {
				t.Error(err)
			}
		}
	}}
	rep = mustDir(t, l.dir, o)
	if rep.Totals.Findings[Gap] != 1 || rep.ExitCode(false) != 1 {
		t.Fatalf("segment 1 still there, 2..4 gone: exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}
}
