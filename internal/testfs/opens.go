package testfs

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenCounter counts the opens of files in a directory as the kernel
// reports them (inotify IN_OPEN), whoever makes them: no hook in the code
// under test.
type OpenCounter struct{ fd int }

// CountOpens starts counting the opens in dir, until the test ends.
func CountOpens(t testing.TB, dir string) *OpenCounter {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_OPEN); err != nil {
		t.Fatalf("inotify watch %s: %v", dir, err)
	}
	return &OpenCounter{fd: fd}
}

// Take returns the opens since the last call, by file name ("" for the
// directory itself).
func (c *OpenCounter) Take(t testing.TB) map[string]int {
	t.Helper()
	n := map[string]int{}
	buf := make([]byte, 64<<10)
	for {
		k, err := unix.Read(c.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return n
		}
		if err != nil {
			t.Fatalf("inotify read: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				t.Fatal("inotify queue overflowed: opens not counted")
			}
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			n[string(bytes.TrimRight(name, "\x00"))]++
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
