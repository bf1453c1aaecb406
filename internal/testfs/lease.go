package testfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TakeLease takes a lease of type typ (unix.F_RDLCK or unix.F_WRLCK) on
// the file at path, as a file server would, skipping the test where the
// file system has none. broken receives once an open has started the
// lease's break (the holder is told by a signal, F_SETSIG); giveUp gives
// the lease up (once: later calls do nothing). Until then, or the test's end, an open that conflicts
// with it waits, or with O_NONBLOCK fails with EWOULDBLOCK. Signals are
// per process: one lease at a time.
func TakeLease(t testing.TB, path string, typ int) (broken <-chan os.Signal, giveUp func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	told := make(chan os.Signal, 1)
	signal.Notify(told, syscall.SIGUSR1)
	t.Cleanup(func() { signal.Stop(told) })
	fd := f.Fd()
	if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, typ); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EAGAIN) {
			t.Skipf("no lease on %s here: %v", path, err)
		}
		t.Fatal(err)
	}
	for _, c := range [][2]int{{unix.F_SETOWN, os.Getpid()}, {unix.F_SETSIG, int(syscall.SIGUSR1)}} {
		if _, err := unix.FcntlInt(fd, c[0], c[1]); err != nil {
			t.Fatalf("fcntl %d: %v", c[0], err)
		}
	}
	given := false
	return told, func() {
		t.Helper()
		if given {
			return
		}
		given = true
		if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK); err != nil {
			t.Fatal(err)
		}
	}
}

// CancelInLeaseWait takes a write lease on the file at path and runs run
// with a context that it cancels once run's open of path has started the
// lease's break, and returns run's error. run must return while the lease
// is still held (only the cancellation can end its wait then), which is
// given up after.
func CancelInLeaseWait(t testing.TB, path string, run func(context.Context) error) error {
	t.Helper()
	return cancelInLease(t, path, unix.F_WRLCK, run)
}

// CancelInReadLeaseWait is CancelInLeaseWait with a read lease, which
// only an open for writing breaks: for a wait in such an open of a file
// run reads first.
func CancelInReadLeaseWait(t testing.TB, path string, run func(context.Context) error) error {
	t.Helper()
	return cancelInLease(t, path, unix.F_RDLCK, run)
}

func cancelInLease(t testing.TB, path string, typ int, run func(context.Context) error) error {
	t.Helper()
	broken, giveUp := TakeLease(t, path, typ)
	defer giveUp()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := brokenFirst(t, broken, func() error { return run(ctx) }, func(err error) string {
		return fmt.Sprintf("returned (%v) while the lease on %s was held", err, path)
	})
	cancel()
	// Past lease-break-time the kernel breaks the lease itself and the
	// open goes on: a run that returns only then ignored ctx. Half of it
	// tells the two apart by far (a cancelled wait ends in microseconds).
	select {
	case err := <-ran:
		return err
	case <-time.After(leaseBreakTime() / 2):
		t.Fatalf("not returned within %v of its context's cancellation: it waits for the kernel to break the lease on %s", leaseBreakTime()/2, path)
		return nil
	}
}

// BrokenFirst runs run on a goroutine and returns once the holder of a
// lease (TakeLease's broken) is told of its break: run's open has started
// it, and waits. A run that returns first fails the test, early saying
// what it returned; neither within a minute fails it as a hang. wait
// receives run's result.
func BrokenFirst[T any](t testing.TB, broken <-chan os.Signal, run func() T, early func(T) string) (wait func() T) {
	t.Helper()
	ran := brokenFirst(t, broken, run, early)
	return func() T { return <-ran }
}

func brokenFirst[T any](t testing.TB, broken <-chan os.Signal, run func() T, early func(T) string) <-chan T {
	t.Helper()
	ran := make(chan T, 1)
	go func() { ran <- run() }()
	select {
	case <-broken:
	case r := <-ran:
		t.Fatal(early(r))
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("the lease's holder was not told within a minute")
	}
	return ran
}

// leaseBreakTime is how long the kernel lets a lease holder take before
// it breaks the lease itself (45 s by default).
func leaseBreakTime() time.Duration {
	b, err := os.ReadFile("/proc/sys/fs/lease-break-time")
	if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 45 * time.Second
}

// AwaitClose returns a function that waits for the next close of the
// file at path since AwaitClose was called, by whoever opened it (inotify
// IN_CLOSE_WRITE, IN_CLOSE_NOWRITE: no hook in the code under test; a
// file mapped is closed when its last mapping goes), and then until a
// write lease can be taken on it: the kernel reports the close a moment
// before it stops counting the file open (fsnotify_close comes before
// put_file_access in __fput), and a write lease is refused (EAGAIN)
// while anyone else has the file open. TakeLease can then take one.
func AwaitClose(t testing.TB, path string) (wait func()) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatalf("inotify watch %s: %v", path, err)
	}
	return func() {
		t.Helper()
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(time.Minute/time.Millisecond)); err != nil || n == 0 { // a hang, not a measurement
			t.Fatalf("%s not closed within a minute (%v)", path, err)
		}
		buf := make([]byte, 4096)
		if _, err := unix.Read(fd, buf); err != nil {
			t.Fatalf("inotify read: %v", err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// No event marks the count's drop: the lease is tried until it
		// is granted (microseconds after the close).
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
			_, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_WRLCK)
			if err == nil {
				break
			}
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
				t.Skipf("no lease on %s here: %v", path, err)
			}
			if !errors.Is(err, unix.EAGAIN) || time.Now().After(deadline) {
				t.Fatalf("write lease on %s after its close: %v", path, err)
			}
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK); err != nil {
			t.Fatal(err)
		}
	}
}
