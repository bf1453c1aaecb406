package segment

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// goneLog makes a log directory holding the files of the segments seqs
// (empty files: Present only looks at the names).
func goneLog(t *testing.T, seqs ...uint64) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range seqs {
		if err := os.WriteFile(filepath.Join(dir, FileName(s)), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// countSeq returns the numbers of a listing whose entry k is segment k+1,
// counting the entries looked at in *n: one per Present call.
func countSeq(n *int) func(k int) uint64 {
	return func(k int) uint64 { *n++; return uint64(k) + 1 }
}

// Retention removed every segment of a listing of 400 while it was read,
// and each of 200 holes asks about the segments below it: each segment is
// looked at once in all, not once per hole above it (20,000 times, two
// lstat calls each).
func TestGoneLooksOnce(t *testing.T) {
	const n = 400
	dir := goneLog(t)
	var g Gone
	looked := 0
	seq := countSeq(&looked)
	for i := 2; i <= n; i += 2 {
		if g.OlderPresent(dir, i, seq) {
			t.Fatalf("hole above entry %d: an older segment present in an empty directory", i)
		}
	}
	if looked > n {
		t.Fatalf("%d segments looked at for 200 holes over %d segments, want at most %d", looked, n, n)
	}
}

// The oldest segment stays and every other one is gone (not retention:
// each hole is damage). Each hole looks at the segments new since the
// last one and at the oldest again, not at every one between.
func TestGoneOldestStays(t *testing.T) {
	const n = 400
	dir := goneLog(t, 1)
	var g Gone
	looked := 0
	seq := countSeq(&looked)
	for i := 1; i <= n; i++ {
		if !g.OlderPresent(dir, i, seq) {
			t.Fatalf("hole above entry %d: segment 1 is there", i)
		}
	}
	if looked > 2*n {
		t.Fatalf("%d segments looked at for %d holes, want at most %d", looked, n, 2*n)
	}
}

// While segments are only removed, in any order, OlderPresent answers as
// looking at every older entry again does.
func TestGoneSameAnswers(t *testing.T) {
	const n = 40
	for round := range 8 {
		rnd := rand.New(rand.NewPCG(uint64(round), 1))
		all := make([]uint64, n)
		for k := range all {
			all[k] = uint64(k) + 1
		}
		dir := goneLog(t, all...)
		var g Gone
		looked := 0
		seq := countSeq(&looked)
		for range 3 * n {
			if rnd.IntN(2) == 0 {
				s := uint64(rnd.IntN(n)) + 1
				if err := os.Remove(filepath.Join(dir, FileName(s))); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
			i := rnd.IntN(n + 1)
			want := false
			for k := i - 1; k >= 0 && !want; k-- {
				want = Present(dir, uint64(k)+1)
			}
			if got := g.OlderPresent(dir, i, seq); got != want {
				t.Fatalf("round %d: OlderPresent(%d) = %v, looking at every entry says %v", round, i, got, want)
			}
		}
	}
}
