package reader_test

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// TestOpenContextEndsLeaseWait (review): a segment another process holds
// a write lease on (a file server's) is opened once the lease's break has
// been waited for, up to lease-break-time and a second (46 s by default),
// and nothing ended that wait: a tail told to stop sat in it. With the
// reader's context cancelled, Next returns false at once, after the
// records before that segment, and Err wraps the cancellation and the
// open's EWOULDBLOCK; the segment is not reported as damage.
func TestOpenContextEndsLeaseWait(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 3000, true)
	var want []rec
	for _, x := range all {
		if x.pos.Seq == 1 {
			want = append(want, x)
		}
	}
	if all[len(all)-1].pos.Seq < 3 {
		t.Fatalf("the fixture has %d segments, want 3 or more", all[len(all)-1].pos.Seq)
	}
	broken, giveUp := testfs.TakeLease(t, filepath.Join(dir, segment.FileName(2)), unix.F_WRLCK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dmg []reader.Damage
	r, err := reader.OpenContext(ctx, dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := make(chan []rec, 1)
	go func() {
		var out []rec
		for r.Next() {
			x := r.Record()
			out = append(out, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
		}
		read <- out
	}()
	select {
	case <-broken:
	case got := <-read:
		t.Fatalf("the reader stopped (%d records, %v) while the lease was held, before it was cancelled", len(got), r.Err())
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("the lease's holder was not told within a minute")
	}
	cancel()
	got := <-read // the lease is still held: only the cancellation ends the wait
	giveUp()
	if err := r.Err(); !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("reader cancelled during a lease's break: Err = %v; want one wrapping context.Canceled and EWOULDBLOCK", err)
	}
	t.Log(r.Err())
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Errorf("damage reported: %v", dmg)
	}
}
