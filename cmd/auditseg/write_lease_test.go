package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestWriteSignalDuringOpenLeaseWait: write opened the log with no
// context, and under another process's lease on LOCK (a file server's)
// Open waited for the lease's break, up to lease-break-time and a second
// (46 s by default), whatever signal came: the signal was taken only
// once the log was open. Now SIGINT ends that wait: write says it was
// interrupted while opening the log, reads nothing and exits 0, as a
// signal stops it (everything read, nothing, is committed), the log as
// it was and not held.
func TestWriteSignalDuringOpenLeaseWait(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != exitOK {
		t.Fatalf("write: exit %d: %s", code, stderr)
	}
	// Inherited ignored, SIGINT would leave write waiting for the
	// lease's break.
	catchIgnored(syscall.SIGINT)
	_, stderr, code := underLease(t, filepath.Join(dir, segment.LockName), func(func()) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Error(err)
		}
	}, "write", "--segment-size", "64KiB", dir)
	if code != exitOK || !strings.Contains(stderr, "interrupted while opening the log, nothing read") {
		t.Fatalf("SIGINT during Open's lease wait: exit %d, stderr %q; want exit 0 and the interruption while opening said", code, stderr)
	}
	t.Log(stderr)
	if alive, _, err := segment.WriterAlive(dir); err != nil || alive {
		t.Errorf("after the interrupted write: writer alive %v (%v); want the log not held", alive, err)
	}
	got := payloads(t, dir)
	if len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "b" {
		t.Errorf("records after the interrupted write: %q; want a, b", got)
	}
}
