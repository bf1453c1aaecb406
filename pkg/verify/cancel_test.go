package verify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestDoneContextVerifiesNothing: a context already done stops a run
// before it starts: no report, an error that answers to the context's.
func TestDoneContextVerifiesNothing(t *testing.T) {
	l := newTestLog(t)
	s := l.sealed(5)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, stop := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer stop()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
		run  func(context.Context) (*Report, error)
	}{
		{"PathsContext", cancelled, context.Canceled, func(ctx context.Context) (*Report, error) {
			return PathsContext(ctx, []string{l.dir}, Options{})
		}},
		{"DirContext", cancelled, context.Canceled, func(ctx context.Context) (*Report, error) { return DirContext(ctx, l.dir, Options{}) }},
		{"FilesContext", expired, context.DeadlineExceeded, func(ctx context.Context) (*Report, error) {
			return FilesContext(ctx, []string{s.path}, Options{})
		}},
	} {
		rep, err := c.run(c.ctx)
		if rep != nil || !errors.Is(err, c.want) {
			t.Errorf("%s with a done context: report %v, error %v; want no report and %v", c.name, rep != nil, err, c.want)
		}
	}
}

// TestCancelDuringLeaseWait (review): a segment under another process's
// write lease (a file server's) is read once the lease's break has been
// waited for, up to lease-break-time and a second (46 s by default), and
// verify took no context: nothing could end that wait. Cancelled while
// the lease is held, DirContext returns, with no report (what was read
// is no verdict) and an error wrapping context.Canceled; the segment
// after the one waited for is never started (one worker: it would be
// counted by Progress). --quick, which reads a sealed segment's ends
// with pread rather than mapping it, opens it the same way.
func TestCancelDuringLeaseWait(t *testing.T) {
	for _, quick := range []bool{false, true} {
		l := newTestLog(t)
		l.sealed(5)
		leased := l.sealed(5)
		l.sealed(5)
		var checked, total int64
		var rep *Report
		err := testfs.CancelInLeaseWait(t, leased.path, func(ctx context.Context) (err error) {
			o := Options{Quick: quick, Workers: 1, Progress: func(done, all int64) { checked, total = done, all }}
			rep, err = DirContext(ctx, l.dir, o)
			return err
		})
		if rep != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("quick %v: DirContext cancelled during a lease's break: report %v, error %v; want no report and context.Canceled", quick, rep != nil, err)
		}
		if checked != 2*testSize || total != 3*testSize {
			t.Errorf("quick %v: Progress last said %d of %d bytes; want the first two segments' (%d) of %d: the third not started", quick, checked, total, 2*testSize, 3*testSize)
		}
		t.Log(err)
	}
}

// TestCancelDuringLockLeaseWait (review): the LOCK file a writer left is
// opened, before any segment is read, to ask whether a writer holds it;
// under another process's write lease that open waited for the lease's
// break with no context (segment.WriterInfo), so a cancelled run still
// sat there for up to 46 s. It returns while the lease is held, no report.
func TestCancelDuringLockLeaseWait(t *testing.T) {
	l := newTestLog(t)
	l.sealed(5)
	lock := filepath.Join(l.dir, segment.LockName)
	if err := os.WriteFile(lock, nil, 0o640); err != nil { // a writer gone
		t.Fatal(err)
	}
	var rep *Report
	err := testfs.CancelInLeaseWait(t, lock, func(ctx context.Context) (err error) {
		rep, err = DirContext(ctx, l.dir, Options{})
		return err
	})
	if rep != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("DirContext cancelled in LOCK's lease wait: report %v, error %v; want no report and context.Canceled", rep != nil, err)
	}
}

// TestCancelDuringUnaskedFooterLeaseWait (review): verifying some files of
// a log, the footers of the newer segments not asked for are read to find
// where its unsealed tail begins (sealedOnDisk), and that read waited for
// a lease's break under context.Background (segment.SealedFooter): a
// cancelled run sat there for up to 46 s. It returns while the lease on
// the segment not asked for is held, no report.
func TestCancelDuringUnaskedFooterLeaseWait(t *testing.T) {
	l := newTestLog(t)
	asked := l.sealed(5)
	unasked := l.sealed(5)
	var rep *Report
	err := testfs.CancelInLeaseWait(t, unasked.path, func(ctx context.Context) (err error) {
		rep, err = FilesContext(ctx, []string{asked.path}, Options{})
		return err
	})
	if rep != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("FilesContext cancelled in a footer's lease wait: report %v, error %v; want no report and context.Canceled", rep != nil, err)
	}
}
