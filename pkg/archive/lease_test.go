package archive_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/archive"
	"golang.org/x/sys/unix"
)

// TestCancelDuringLeaseWait (review): a segment another process holds a
// write lease on (a file server's) is opened once the lease's break has
// been waited for, up to lease-break-time and a second (46 s by
// default); a run cancelled meanwhile (SIGINT) sat in that wait. It
// returns at once, the segment interrupted with an error that says it
// waited for the lease, and nothing changed.
func TestCancelDuringLeaseWait(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	broken, giveUp := testfs.TakeLease(t, fx.seg(2), unix.F_WRLCK)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		res *archive.Result
		err error
	}
	ran := testfs.BrokenFirst(t, broken, func() result {
		res, err := archive.Run(ctx, fx.dir, archive.Options{})
		return result{res, err}
	}, func(r result) string { return fmt.Sprintf("Run returned (%v) while the lease was held", r.err) })
	cancel()
	r := ran() // the lease is still held: only the cancellation ends the wait
	giveUp()
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Run cancelled during a lease's break: %v", r.err)
	}
	var two *archive.SegmentResult
	for i, s := range r.res.Segments {
		if s.Seq == 2 {
			two = &r.res.Segments[i]
		}
	}
	if two == nil || two.Outcome != archive.Interrupted || !errors.Is(two.Err, context.Canceled) || !errors.Is(two.Err, syscall.EWOULDBLOCK) {
		t.Fatalf("segment 2, waited for: %+v; want interrupted with an error wrapping context.Canceled and EWOULDBLOCK", two)
	}
	t.Log(two.Err)
	fx.checkSafe(t)
}
