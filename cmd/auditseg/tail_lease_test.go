package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
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
	// A signal while the lease is held: tail stops there.
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
	ran := make(chan result, 1)
	go func() {
		out, stderr, code := execute(t, nil, args...)
		ran <- result{out, stderr, code}
	}()
	select {
	case <-broken:
	case r := <-ran:
		t.Fatalf("%s returned (exit %d, %q) while the lease was held", args[0], r.code, r.stderr)
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("the lease's holder was not told within a minute")
	}
	then(giveUp)
	r := <-ran
	giveUp()
	return r.out, r.stderr, r.code
}
