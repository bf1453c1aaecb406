package segment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"golang.org/x/sys/unix"
)

// OpenNoFollow opens the file at path read-only, never through a symbolic
// link, without blocking: with O_NONBLOCK, so that a FIFO planted under a
// segment's or an archive's name fails its caller's regular-file check
// instead of blocking the open until something writes to it.
//
// O_NONBLOCK has a second effect: an open that conflicts with a file
// lease (fcntl F_SETLEASE, as taken by file servers such as Samba) fails
// at once with EWOULDBLOCK instead of waiting for the lease's holder to
// give it up. The open has still started the lease's break: the holder is
// told, and the kernel removes the lease after
// /proc/sys/fs/lease-break-time seconds (45 by default) if the holder
// does not. So OpenNoFollow tries again (every 1, 2, 4 ... up to 100
// ms) for as long as a blocking open could have waited, lease-break-time
// and a second, and then returns the EWOULDBLOCK. Nothing ends that wait
// early: a caller that can be told to stop uses OpenNoFollowContext.
func OpenNoFollow(path string) (*os.File, error) {
	return OpenNoFollowContext(context.Background(), path)
}

// OpenNoFollowContext is OpenNoFollow whose wait for a lease's break ends
// as soon as ctx is done, with an error that names the file and how long
// the wait lasted, wrapping the open's EWOULDBLOCK, ctx's error
// (context.Canceled, say) and its cause (context.Cause). Without a lease
// it opens as OpenNoFollow does, ctx done or not.
func OpenNoFollowContext(ctx context.Context, path string) (*os.File, error) {
	return OpenNonBlocking(ctx, path, os.O_RDONLY|unix.O_NOFOLLOW)
}

// OpenNonBlocking opens the file at path with flag (os.O_RDONLY, say, with
// unix.O_NOFOLLOW or without), O_NONBLOCK and O_CLOEXEC, waiting for a
// lease's break as OpenNoFollowContext does: for a file of another kind
// than a segment (tail's cursor file) that must not block on a FIFO
// either. It creates nothing (no permission bits). O_NOCTTY too: a
// terminal's device node under such a name must not become the
// controlling terminal of a session leader (a daemon) that opens it.
func OpenNonBlocking(ctx context.Context, path string, flag int) (*os.File, error) {
	var f *os.File
	err := WaitLease(ctx, func() (err error) {
		f, err = os.OpenFile(path, flag|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	return f, err
}

// WaitLease runs open, an open with O_NONBLOCK, and again while it fails
// with EWOULDBLOCK, for as long as a blocking open could wait for a
// lease's break (OpenNoFollow) or until ctx is done; it returns open's
// last error, wrapped with ctx's error and cause if ctx ended the wait
// (open's *PathError names the file: the wrapping does not again). It is
// for an open OpenNonBlocking cannot make: the writer's, through its FS.
func WaitLease(ctx context.Context, open func() error) error {
	err := open()
	if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
		return err
	}
	start := time.Now()
	deadline := start.Add(leaseBreakTime() + time.Second)
	t := time.NewTimer(0)
	defer t.Stop()
	for wait := time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 100*time.Millisecond) {
		t.Reset(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			// Callers tell a cancellation from damage by errors.Is(err,
			// ctx.Err()): cancel.Err answers to that and to the cause.
			return fmt.Errorf("%w: stopped after waiting %s for another process's lease on the file to be given up: %w",
				err, time.Since(start).Round(time.Millisecond), cancel.Err(ctx))
		}
		if err = open(); err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
	}
	return err
}

// leaseBreakTime is how long the kernel lets a lease's holder keep the
// lease once it is told to give it up.
func leaseBreakTime() time.Duration {
	b, err := os.ReadFile("/proc/sys/fs/lease-break-time")
	if err != nil {
		return 45 * time.Second
	}
	s, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || s < 0 {
		return 45 * time.Second
	}
	return time.Duration(s) * time.Second
}
