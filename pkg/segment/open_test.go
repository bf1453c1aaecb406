package segment_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// TestOpenWaitsForALease: an open of a segment file on which another
// holder has a write lease (a file server's, say) waits for the lease to
// be given up, as a blocking open would, instead of failing at once with
// EWOULDBLOCK, which the non-blocking open (kept against FIFOs) returned:
// compress-finished failed such a segment, verify and tail could not read
// it. The holder is told of the break by a signal (F_SETSIG), and gives
// the lease up then.
func TestOpenWaitsForALease(t *testing.T) {
	p := writeFile(t, filepath.Join(t.TempDir(), segment.FileName(1)), sealedSegment(t, 1, 10))
	waitsForLease(t, p, unix.F_WRLCK, "OpenImage", func() error {
		im, err := segment.OpenImage(p)
		if err == nil {
			im.Close()
		}
		return err
	})
}

// TestLockWaitsForALease (review): the writer opens LOCK for writing, with
// O_NONBLOCK against a FIFO there, which conflicts with a read lease (an
// NFS server's read delegation to a client that read LOCK, say): it failed
// at once with EWOULDBLOCK ("open lock file: resource temporarily
// unavailable"), and the writer could not start, where a blocking open
// waits for the lease to be given up.
func TestLockWaitsForALease(t *testing.T) {
	dir := t.TempDir()
	l, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	waitsForLease(t, filepath.Join(dir, segment.LockName), unix.F_RDLCK, "AcquireLock", func() error {
		l, err := segment.AcquireLock(dir)
		if err == nil {
			l.Release()
		}
		return err
	})
}

// waitsForLease takes a lease of type typ on the file at p and checks
// that open (called name) waits for it: the holder is told of the break
// by a signal (F_SETSIG) while open has not returned, and gives the lease
// up then; open succeeds after.
func waitsForLease(t *testing.T, p string, typ int, name string, open func() error) {
	t.Helper()
	broken, giveUp := testfs.TakeLease(t, p, typ)
	opened := testfs.BrokenFirst(t, broken, open, func(err error) string {
		return fmt.Sprintf("%s returned (%v) while the lease was held", name, err)
	})
	giveUp()
	if err := opened(); err != nil {
		t.Fatalf("%s once the lease was given up: %v", name, err)
	}
}

// TestLeaseWaitEndsWithContext (review): the wait for a lease's break
// (up to lease-break-time and a second, 46 s by default) could not be
// ended: a tail or compress-finished told to stop sat in it, and verify
// sat in it in OpenFile and OpenSalvaged, which took no context, and in
// ReadSummary for a damaged archive's summary; the reader and verify in
// ReadFooter, SealedFooter, ReadHeader, ReadFirstFrame and HasRecordBytes.
// Cancelled while the lease is held, each context open returns at once,
// with an error naming the file that wraps both the cancellation and the
// open's EWOULDBLOCK.
func TestLeaseWaitEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	seg := writeFile(t, filepath.Join(dir, segment.FileName(1)), sealedSegment(t, 1, 10))
	// The first open of an archive comes before any decoding: what the
	// file holds does not matter.
	zst := writeFile(t, filepath.Join(dir, segment.ArchiveName(2)), []byte("not decoded"))
	for _, tc := range []struct {
		name, path string
		open       func(context.Context, string) (io.Closer, error)
	}{
		{"OpenImageContext", seg, func(ctx context.Context, p string) (io.Closer, error) { return segment.OpenImageContext(ctx, p) }},
		{"OpenFileContext", seg, func(ctx context.Context, p string) (io.Closer, error) { return segment.OpenFileContext(ctx, p) }},
		{"OpenSalvagedContext", zst, func(ctx context.Context, p string) (io.Closer, error) { return segment.OpenSalvagedContext(ctx, p) }},
		{"ReadSummaryContext", zst, func(ctx context.Context, p string) (io.Closer, error) {
			_, _, err := segment.ReadSummaryContext(ctx, p)
			return io.NopCloser(nil), err
		}},
		{"ReadFooterContext", seg, readFooter},
		{"ReadFooterContext archive", zst, readFooter},
		{"SealedFooterContext", seg, func(ctx context.Context, p string) (io.Closer, error) {
			_, err := segment.SealedFooterContext(ctx, p)
			return io.NopCloser(nil), err
		}},
		{"ReadHeaderContext", seg, readHeader},
		{"ReadHeaderContext archive", zst, readHeader},
		{"ReadFirstFrameContext", seg, func(ctx context.Context, p string) (io.Closer, error) {
			_, _, err := segment.ReadFirstFrameContext(ctx, p)
			return io.NopCloser(nil), err
		}},
		{"HasRecordBytesContext", seg, func(ctx context.Context, p string) (io.Closer, error) {
			_, err := segment.HasRecordBytesContext(ctx, p)
			return io.NopCloser(nil), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := testfs.CancelInLeaseWait(t, tc.path, func(ctx context.Context) error {
				c, err := tc.open(ctx, tc.path)
				if err == nil {
					c.Close()
				}
				return err
			})
			if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) || strings.Count(err.Error(), tc.path) != 1 {
				t.Fatalf("%s cancelled during a lease's break: %v; want an error naming %s (once) wrapping context.Canceled and EWOULDBLOCK", tc.name, err, tc.path)
			}
			t.Log(err)
		})
	}
}

func readFooter(ctx context.Context, p string) (io.Closer, error) {
	_, err := segment.ReadFooterContext(ctx, p)
	return io.NopCloser(nil), err
}

func readHeader(ctx context.Context, p string) (io.Closer, error) {
	_, err := segment.ReadHeaderContext(ctx, p)
	return io.NopCloser(nil), err
}
