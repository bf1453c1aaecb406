package main

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// onFirstWrite is tail's stdout: it runs fn on the first write.
type onFirstWrite struct {
	fn   func()
	done bool
	n    int
}

func (w *onFirstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		w.fn()
	}
	w.n += len(p)
	return len(p), nil
}

// TestTailRemovedAfterStaleListing (review): tail lists segments 1..L;
// while it replays, the writer adds L+1.. and retention removes 1..L+2,
// some of which tail never listed. Every segment gone was removed by
// retention, yet tail exits 1 ("damaged place skipped") for the ones its
// listing did not hold.
func TestTailRemovedAfterStaleListing(t *testing.T) {
	full, dir := t.TempDir(), t.TempDir()
	first := uint64(4*runtime.GOMAXPROCS(0) + 4)
	last := first + 2 // the newest segment tail lists
	n := int(last+6) * 1700
	pos := timedLog(t, full, n, time.Unix(1_700_000_000, 0))
	newest := pos[n-1].Seq
	if newest < last+4 {
		t.Fatalf("only %d segments", newest)
	}
	move := func(from, to uint64) {
		for s := from; s <= to; s++ {
			name := segment.FileName(s)
			if err := os.Rename(filepath.Join(full, name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	move(1, last)
	out := &onFirstWrite{fn: func() {
		move(last+1, newest)
		for s := uint64(1); s <= last+2; s++ { // the oldest, as retention does
			if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
				t.Error(err)
			}
		}
	}}
	stderr, code := executeTo(t, out, nil, "tail", "-n", "+1", dir)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
}
