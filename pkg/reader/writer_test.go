package reader_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestFollowRealWriter: goroutines append concurrently through pkg/writer
// (claims committed out of order, rotations, background sealing) while a
// follower reads; then the writer closes and a new one continues the log.
// The follower returns every appended record exactly once, in position
// order, with the payload Append stored.
func TestFollowRealWriter(t *testing.T) {
	dir := t.TempDir()
	opts := writer.Options{SegmentSize: segSize, Sync: writer.SyncNone}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	fw := follow(t, dir, reader.Options{})
	var mu sync.Mutex
	want := map[segment.Position]string{}
	appendAll := func(w *writer.Writer, round, goroutines, each int) {
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					p := fmt.Sprintf("round %d goroutine %d record %d", round, g, i)
					pos, err := w.Append([]byte(p))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					want[pos] = p
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	appendAll(w, 0, 4, 3000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the follower sees the writer gone
	w, err = writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(w, 1, 3, 2000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got := fw.waitFor(t, len(want), 30*time.Second)
	time.Sleep(50 * time.Millisecond)
	got = fw.waitFor(t, 0, 0)
	if len(got) != len(want) {
		t.Fatalf("follower returned %d records, %d were appended", len(got), len(want))
	}
	if !slices.IsSortedFunc(got, func(a, b rec) int { return a.pos.Compare(b.pos) }) {
		t.Fatal("records out of position order")
	}
	for i, r := range got {
		if i > 0 && r.pos == got[i-1].pos {
			t.Fatalf("record at %v returned twice", r.pos)
		}
		if want[r.pos] != string(r.payload) {
			t.Fatalf("record at %v: %q, appended %q", r.pos, r.payload, want[r.pos])
		}
	}
	if got[len(got)-1].pos.Seq < 8 {
		t.Fatalf("only %d segments", got[len(got)-1].pos.Seq)
	}
	if d := fw.damage(); len(d) != 0 {
		t.Fatalf("damage: %v", d)
	}
	// Read back in one pass too, and the last N by footers.
	all, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, all, got)
	last, _ := readAll(t, dir, reader.Options{Start: reader.Last(777)})
	sameRecs(t, last, got[len(got)-777:])
	if len(dmg) != 0 {
		t.Fatalf("damage: %v", dmg)
	}
}
