package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// TestTailCursorWaitsForALease (review): tail opened its cursor file with
// O_NONBLOCK (against a FIFO there) but without the wait for a lease's
// break segments get: under another process's write lease (a file
// server's) it failed at once, exit 2 with "resource temporarily
// unavailable". It waits now, as for a segment, and a signal ends that
// wait: tail stops as a signal stops it, printing nothing and leaving
// the cursor as it was.
func TestTailCursorWaitsForALease(t *testing.T) {
	dir, _ := compressLog(t, 50)
	cur := filepath.Join(t.TempDir(), "cursor")
	if _, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	more := func(s string) {
		t.Helper()
		if _, stderr, code := execute(t, []byte(s+"\n"), "write", "-q", dir); code != exitOK {
			t.Fatalf("write: exit %d: %s", code, stderr)
		}
	}
	// The lease given up once its holder is told: tail reads the cursor
	// then, and goes on after it.
	more("after-1")
	out, stderr, code := underLease(t, cur, func(giveUp func()) { giveUp() }, "tail", "--cursor-file", cur, dir)
	if code != exitOK || out != "after-1\n" {
		t.Fatalf("lease given up: exit %d, out %q, stderr %q; want exit 0 and after-1", code, out, stderr)
	}
	// A signal while the lease is held: tail stops there. (Inherited
	// ignored, SIGINT would leave tail waiting for the lease's break.)
	catchIgnored(syscall.SIGINT)
	more("after-2")
	was, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code = underLease(t, cur, func(func()) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Error(err)
		}
	}, "tail", "--cursor-file", cur, dir)
	if now, err := os.ReadFile(cur); err != nil || string(now) != string(was) {
		t.Errorf("cursor file after the signal: %q, %v; want it unchanged, %q", now, err, was)
	}
	if code != exitOK || out != "" || strings.Contains(stderr, "after-2") {
		t.Fatalf("signal during the wait: exit %d, out %q, stderr %q; want exit 0, nothing printed", code, out, stderr)
	}
}

// underLease runs the command args while a write lease is held on path,
// calls then with the function that gives the lease up once the
// command's open of path has started the lease's break (the command has
// not returned: it waits), and returns what the command did. The lease
// is given up by the test's end.
func underLease(t *testing.T, path string, then func(giveUp func()), args ...string) (stdout, stderr string, code int) {
	t.Helper()
	broken, giveUp := testfs.TakeLease(t, path, unix.F_WRLCK)
	type result struct {
		out, stderr string
		code        int
	}
	ran := testfs.BrokenFirst(t, broken, func() result {
		out, stderr, code := execute(t, nil, args...)
		return result{out, stderr, code}
	}, func(r result) string {
		return fmt.Sprintf("%s returned (exit %d, %q) while the lease was held", args[0], r.code, r.stderr)
	})
	then(giveUp)
	r := ran()
	giveUp()
	return r.out, r.stderr, r.code
}

// TestCursorCheckEndsWithSignal (review): the check that a cursor file
// belongs to the log reads its segment's header (the creation time
// stamped in the cursor), and read it with a plain blocking open: under
// another process's write lease on that segment, a tail whose signal
// arrived sat there until the kernel broke the lease (lease-break-time,
// 45 s by default). It reads under tail's signal context now: the wait
// ends with the cancellation, which tail takes for the signal's stop.
func TestCursorCheckEndsWithSignal(t *testing.T) {
	dir := t.TempDir()
	pos := timedLog(t, dir, 4*1700, time.Unix(1_700_000_000, 0))
	at := pos[len(pos)/2]
	c := cursorAt(dir, at)
	if c.created == 0 {
		t.Fatalf("cursor at %v has no creation time", at)
	}
	seg := filepath.Join(dir, segment.FileName(at.Seq))
	err := testfs.CancelInLeaseWait(t, seg, func(ctx context.Context) error {
		_, err := checkCursor(ctx, dir, filepath.Join(t.TempDir(), "cursor"), c)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("checkCursor cancelled in a lease's wait on %s: %v; want an error wrapping context.Canceled", seg, err)
	}
}
