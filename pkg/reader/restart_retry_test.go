package reader

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// noteOldest notes the oldest segment listed when a look finds the
// reader's segment still there, and while that one stays a lower number
// is not taken for a new log's (a clock stepped back between creations).
// When reading the oldest's header failed (an I/O error, too many open
// files, the file being replaced), nothing was noted and the header was
// not read again until the oldest listed changed: for as long as that
// segment stayed, the guard was off, and a writer's ordinary Close
// removing the empty segment the reader waits in stopped it with
// ErrLogReplaced (found by a review). The state of
// TestFollowerInAnEmptySegmentNotStoppedByAClockStep ("oldest removed"),
// with segment 2's header unreadable at the look after retention removed
// segment 1: the follower's later looks must read it again (the test
// takes them by hand, as many as an idle follower takes in a few
// seconds), but not at every look while it stays unreadable.
func TestNoteOldestReadAgainAfterAFailure(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().UnixNano()
	writeSeg(t, dir, 1, t0, 3, true)
	writeSeg(t, dir, 2, t0+1, 3, false)
	writeSeg(t, dir, 3, t0-int64(time.Hour), 0, false) // made ahead, the clock stepped back
	r, err := Open(dir, Options{Follow: true, Start: At(Position{Seq: 3, Offset: segment.HeaderSize})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Next() || r.Err() != nil || r.cur == nil || r.cur.seq != 3 {
		t.Fatalf("want the follower waiting in segment 3: err %v, cur %+v", r.Err(), r.cur)
	}
	look := func(what string) {
		t.Helper()
		if err := r.relist(); err != nil {
			t.Fatalf("look %s: %v", what, err)
		}
	}
	one, two := filepath.Join(dir, segment.FileName(1)), filepath.Join(dir, segment.FileName(2))
	if err := os.Remove(one); err != nil { // retention
		t.Fatal(err)
	}
	// Segment 2 unreadable (a file replacing it, put back later).
	kept := filepath.Join(t.TempDir(), "kept")
	if err := os.Link(two, kept); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(two+".tmp", make([]byte, segment.HeaderSize), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(two+".tmp", two); err != nil {
		t.Fatal(err)
	}
	opens := testfs.CountOpens(t, dir)
	const looks = 1000
	for range looks {
		look("with segment 2 unreadable")
	}
	if n := opens.Take(t)[segment.FileName(2)]; n == 0 || n > looks/32 {
		t.Fatalf("segment 2 opened %d times in %d looks while unreadable: want a few, read again less and less often", n, looks)
	}
	if err := os.Rename(kept, two); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		look("with segment 2 readable again")
	}
	// The writer's Close removes segment 3, made ahead and never used.
	if err := os.Remove(filepath.Join(dir, segment.FileName(3))); err != nil {
		t.Fatal(err)
	}
	look("after segment 3 was removed unused")
}
