package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
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
// open's EWOULDBLOCK; the segment is not reported as damage. So too
// with a context cancelled with a cause of its own (context.Cause), which
// the open's error wrapped instead of the cancellation: the segment was
// reported as damage, and Err did not wrap context.Canceled.
func TestOpenContextEndsLeaseWait(t *testing.T) {
	for _, cause := range []error{nil, errors.New("shutting down")} {
		t.Run(fmt.Sprintf("cause %v", cause), func(t *testing.T) { openContextEndsLeaseWait(t, cause) })
	}
}

func openContextEndsLeaseWait(t *testing.T, cause error) {
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
	ctx, cancelCause := context.WithCancelCause(context.Background())
	cancel := func() { cancelCause(cause) }
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
	if err := r.Err(); !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) || !errors.Is(err, context.Cause(ctx)) {
		t.Fatalf("reader cancelled during a lease's break: Err = %v; want one wrapping context.Canceled, the cause and EWOULDBLOCK", err)
	}
	t.Log(r.Err())
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Errorf("damage reported: %v", dmg)
	}
}

// TestOpenContextEndsLockLeaseWait (review): at the end of what is
// written the reader asks LOCK whether a writer may still add to the log,
// and under another process's write lease on LOCK that open waited for the
// lease's break without the reader's context (segment.WriterInfo). With
// the context cancelled the reader stops while the lease is held, Err
// wrapping the cancellation.
func TestOpenContextEndsLockLeaseWait(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, true)
	lock := filepath.Join(dir, segment.LockName)
	if err := os.WriteFile(lock, nil, 0o640); err != nil { // a writer gone
		t.Fatal(err)
	}
	var n int
	err := testfs.CancelInLeaseWait(t, lock, func(ctx context.Context) error {
		r, err := reader.OpenContext(ctx, dir, reader.Options{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			n++
		}
		return r.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("reader cancelled in LOCK's lease wait after %d records: %v; want an error wrapping context.Canceled", n, err)
	}
}
