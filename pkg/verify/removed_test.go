package verify

import (
	"fmt"
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

// Retention removes 3k+1 segments while verify reads them, k of them (3,
// 6, 9...) before verify opens them and the others after it read them: k
// holes, each with every older segment gone. None is a gap. Each hole
// used to look at every older segment read again (segment.Gone).
func TestRetentionManyHoles(t *testing.T) {
	const k = 20
	l := newTestLog(t)
	for range 3*k + 1 {
		l.sealed(1)
	}
	rm := func(s uint64) {
		if err := os.Remove(filepath.Join(l.dir, segment.FileName(s))); err != nil {
			t.Error(err)
		}
	}
	calls := uint64(0)
	o := Options{Workers: 1, Quick: true, Progress: func(_, _ int64) {
		calls++ // segment calls is done; the worker has taken calls+1 at most
		switch calls % 3 {
		case 1:
			rm(calls)
			if calls < 3*k {
				rm(calls + 2)
			}
		case 2:
			rm(calls)
		}
	}}
	rep := mustDir(t, l.dir, o)
	if len(rep.Findings) != 0 || rep.ExitCode(false) != 0 || len(rep.Segments) != 2*k+1 {
		t.Fatalf("exit %d, %d segments, findings:\n%s", rep.ExitCode(false), len(rep.Segments), summary(rep))
	}
}

// BenchmarkRemovedWhileRead places n results of a log whose segments are
// all gone, a hole above every other one: each hole asks whether an older
// segment stayed. ns/segment stays flat as n grows when each segment is
// looked at once; it grew with n when every hole looked at every older
// segment.
func BenchmarkRemovedWhileRead(b *testing.B) {
	for _, n := range []int{64, 256} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				u := &unit{dir: dir, gone: map[uint64]bool{}}
				for i := range n {
					u.results = append(u.results, &result{order: uint64(2*i + 1)})
					u.gone[uint64(2*i+2)] = true
				}
				for i := 1; i < n; i++ {
					if !removedWhileRead(u, i, u.results[i]) {
						b.Fatalf("hole below result %d: a gap in an empty directory", i)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/segment")
		})
	}
}
