package segment_test

import (
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	broken := make(chan os.Signal, 1)
	signal.Notify(broken, syscall.SIGUSR1)
	defer signal.Stop(broken)
	fd := f.Fd()
	if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EAGAIN) {
			t.Skipf("no write lease on %s here: %v", p, err)
		}
		t.Fatal(err)
	}
	for _, c := range [][2]int{{unix.F_SETOWN, os.Getpid()}, {unix.F_SETSIG, int(syscall.SIGUSR1)}} {
		if _, err := unix.FcntlInt(fd, c[0], c[1]); err != nil {
			t.Fatalf("fcntl %d: %v", c[0], err)
		}
	}
	opened := make(chan error, 1)
	go func() {
		im, err := segment.OpenImage(p)
		if err == nil {
			im.Close()
		}
		opened <- err
	}()
	select {
	case <-broken:
	case err := <-opened:
		t.Fatalf("OpenImage returned (%v) while the lease was held", err)
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("the lease's holder was not told within a minute")
	}
	if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("OpenImage once the lease was given up: %v", err)
	}
}
