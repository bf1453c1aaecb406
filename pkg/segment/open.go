package segment

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

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
// and a second, and then returns the EWOULDBLOCK.
func OpenNoFollow(path string) (*os.File, error) {
	const flags = os.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	var f *os.File
	err := waitLease(func() (err error) {
		f, err = os.OpenFile(path, flags, 0)
		return err
	})
	return f, err
}

// waitLease runs open, an open with O_NONBLOCK, and again while it fails
// with EWOULDBLOCK, for as long as a blocking open could wait for a
// lease's break (OpenNoFollow); it returns open's last error.
func waitLease(open func() error) error {
	err := open()
	if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
		return err
	}
	deadline := time.Now().Add(leaseBreakTime() + time.Second)
	for wait := time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 100*time.Millisecond) {
		time.Sleep(wait)
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
