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

// TestOpenContextEndsFooterLeaseWait (review): before a record is read,
// Open reads the oldest segment's header (the restart look's note of
// it), and for Since and Last the footers that place the start, with
// segment.ReadHeader and ReadFooter under context.Background: a segment
// under another process's write lease held a cancelled reader in the
// open's wait for the lease's break (up to lease-break-time and a
// second). Cancelled in that wait, the reader returns no record and Err
// wraps the cancellation and the open's EWOULDBLOCK; nothing is reported
// as damage.
func TestOpenContextEndsFooterLeaseWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		// leased returns the segment whose open is waited in, and the
		// options that make Open read it.
		leased func(all []rec) (uint64, reader.Options)
	}{
		{"oldest header", func([]rec) (uint64, reader.Options) { return 1, reader.Options{} }},
		{"Since footer", func(all []rec) (uint64, reader.Options) {
			// After every record of segment 1: its footer passes it, and
			// segment 2's is read next.
			one := firstSegment(t, all)
			return 2, reader.Options{Since: time.Unix(0, one[len(one)-1].ts+1)}
		}},
		{"Last footer", func(all []rec) (uint64, reader.Options) {
			return all[len(all)-1].pos.Seq, reader.Options{Start: reader.Last(1)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			seq, opts := tc.leased(writeLog(t, dir, 3000, true))
			if got := readCancelledInLease(t, dir, filepath.Join(dir, segment.FileName(seq)), opts); len(got) != 0 {
				t.Errorf("%d records read, want none", len(got))
			}
		})
	}
}

// TestAtTailEndsLaterLeaseWait (review): a reader at the zeros ending a
// segment looks at the segment after it, a follower at its first frame
// (laterHasFrames: did a writer move on?), any reader at its footer
// (countsSealed: is the segment torn, a later one sealed?), with
// segment.ReadFirstFrame and SealedFooter under context.Background: under
// another process's write lease on that file a cancelled reader sat in
// the open's wait, and the reader that does not follow then reported the
// segment as unfinished. Cancelled there, the reader stops after the
// records of the segment it is at, Err wrapping the cancellation, and
// reports no damage.
func TestAtTailEndsLaterLeaseWait(t *testing.T) {
	for _, follow := range []bool{true, false} {
		t.Run(fmt.Sprintf("follow %v", follow), func(t *testing.T) { atTailEndsLaterLeaseWait(t, follow) })
	}
}

func atTailEndsLaterLeaseWait(t *testing.T, follow bool) {
	dir := t.TempDir()
	want := writeLog(t, dir, 300, false)
	if want[len(want)-1].pos.Seq != 1 {
		t.Fatalf("the fixture spans %d segments, want 1", want[len(want)-1].pos.Seq)
	}
	next := newSeg(2).write(t, dir) // made ahead, empty
	sameRecs(t, readCancelledInLease(t, dir, next, reader.Options{Follow: follow}), want)
}

// readCancelledInLease reads the log in dir with opts under a context
// cancelled once an open of leased (under a write lease) waits for the
// lease's break, and returns the records read. It checks that Open
// succeeded, that Err wraps the cancellation and the open's EWOULDBLOCK,
// and that nothing was reported as damage.
func readCancelledInLease(t *testing.T, dir, leased string, opts reader.Options) []rec {
	t.Helper()
	var got []rec
	var dmg []reader.Damage
	opts.OnDamage = func(d reader.Damage) { dmg = append(dmg, d) }
	err := testfs.CancelInLeaseWait(t, leased, func(ctx context.Context) error {
		r, err := reader.OpenContext(ctx, dir, opts)
		if err != nil {
			// tail takes an Open error for a usage error (exit 2), and
			// Err wrapping its context for a stop (exit 0).
			t.Errorf("Open failed (%v): a wait its context ended stops the reader, Err says why", err)
			return err
		}
		defer r.Close()
		for r.Next() {
			x := r.Record()
			got = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
		}
		return r.Err()
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("reader cancelled in %s's lease wait: Err = %v; want one wrapping context.Canceled and EWOULDBLOCK", leased, err)
	}
	t.Log(err)
	if len(dmg) != 0 {
		t.Errorf("damage reported: %v", dmg)
	}
	return got
}

// TestRestartLookEndsLeaseWait (review): before it reads a segment it
// opened, the reader looks for a log begun again (stopIfRestarted), which
// may read another segment's header: here segment 1's, touched since Open
// read it, while the reader opens segment 3 (a start in it). Cancelled in
// that read's lease wait, Err was set but the look, taking the failed
// read for no verdict, let the reader go on: Next returned segment 3's
// first record after the reader had stopped (Bulk wrote whole segments).
// It returns none, Err wrapping the cancellation and EWOULDBLOCK.
func TestRestartLookEndsLeaseWait(t *testing.T) {
	dir := t.TempDir()
	firstSegment(t, writeLog(t, dir, 3000, true))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dmg []reader.Damage
	r, err := reader.OpenContext(ctx, dir, reader.Options{Start: reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize}),
		OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Touched: the header Open read is read again, not taken from the
	// reader's cache.
	one := filepath.Join(dir, segment.FileName(1))
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(one, later, later); err != nil {
		t.Fatal(err)
	}
	broken, giveUp := testfs.TakeLease(t, one, unix.F_WRLCK)
	defer giveUp()
	read := testfs.BrokenFirst(t, broken, func() int {
		n := 0
		for r.Next() {
			n++
		}
		return n
	}, func(n int) string {
		return fmt.Sprintf("the reader stopped (%d records, %v) while the lease was held, before it was cancelled", n, r.Err())
	})
	cancel()
	n := read() // the lease is still held: only the cancellation ends the wait
	giveUp()
	if err := r.Err(); !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("reader cancelled in the restart look's lease wait: Err = %v; want one wrapping context.Canceled and EWOULDBLOCK", err)
	}
	if n != 0 {
		t.Errorf("%d records returned after the reader stopped (Err %v), want none", n, r.Err())
	}
	if len(dmg) != 0 {
		t.Errorf("damage reported: %v", dmg)
	}
}
