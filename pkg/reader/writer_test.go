package reader_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testlog"
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

// TestFollowStaysOnTheSegmentTheNextWriterContinues: a writer that closes
// leaves its prepared segment empty for the next writer to continue in, and
// removes the file it had created after that one. A follower that looks
// while no writer holds the log and the second file still exists must
// wait at the empty segment, not move past it to the file that is about to
// disappear: then the next writer's records would never be returned.
func TestFollowStaysOnTheSegmentTheNextWriterContinues(t *testing.T) {
	dir := t.TempDir()
	opts := writer.Options{SegmentSize: segSize, Sync: writer.SyncNone}
	l := testlog.Write(t, dir, opts, 1, func(int) []byte { return []byte("first writer") })
	last, _ := l.Last()
	empty := last.Seq // the prepared segment, unless Close came before it
	im, err := segment.OpenImage(last.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Footer(); err == nil {
		empty++
		put(t, dir, empty)
	}
	im.Close()
	// The file created ahead, as the closing writer had it a moment before
	// it removed it.
	aheadPath := put(t, dir, empty+1)
	fw := follow(t, dir, reader.Options{})
	fw.waitFor(t, 1, 5*time.Second)
	time.Sleep(600 * time.Millisecond) // more than the follower's writer-liveness interval
	if err := os.Remove(aheadPath); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	pos, err := w.Append([]byte("second writer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if pos.Seq != empty {
		t.Fatalf("the second writer appended in segment %d, want the one left empty (%d)", pos.Seq, empty)
	}
	got := fw.waitFor(t, 2, 5*time.Second)
	if len(got) != 2 || string(got[1].payload) != "second writer" || got[1].pos != pos {
		t.Fatalf("follower returned %d records (%v); the second writer's record is missing", len(got), got)
	}
}

// put writes an empty segment file as a writer creates it.
func put(t *testing.T, dir string, seq uint64) string {
	t.Helper()
	p := filepath.Join(dir, segment.FileName(seq))
	if err := os.WriteFile(p, segment.NewImage(seq, segSize, time.Now().UnixNano()), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLastZeroWithRealWriter: Last(0) reads exactly the records committed
// after Open. A running writer keeps empty segment files ahead of the
// active one (the prepared next segment, the one created ahead); reading
// started in the newest of those and passed over every record appended
// meanwhile to the segments before it (a review lost 1221 of 3000).
func TestLastZeroWithRealWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 1500 {
		if _, err := w.Append(fmt.Appendf(nil, "old %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The empty files ahead exist before the reader lists the directory.
	cur, _ := w.Append([]byte("last old"))
	for next := cur.Seq + 1; ; time.Sleep(time.Millisecond) {
		if _, err := os.Lstat(filepath.Join(dir, segment.FileName(next))); err == nil {
			break
		}
	}
	fw := follow(t, dir, reader.Options{Start: reader.Last(0)}) // Open locates the start
	var want []rec
	for i := range 3000 {
		p := fmt.Appendf(nil, "new %d", i)
		pos, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{pos: pos, payload: p})
	}
	got := fw.waitFor(t, len(want), 10*time.Second)
	if len(got) != len(want) || got[0].pos != want[0].pos {
		t.Fatalf("Last(0): first record %v %q, want %v %q; %d records, want %d", got[0].pos, got[0].payload, want[0].pos, want[0].payload, len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || string(got[i].payload) != string(want[i].payload) {
			t.Fatalf("record %d: %v %q, want %v %q", i, got[i].pos, got[i].payload, want[i].pos, want[i].payload)
		}
	}
}
