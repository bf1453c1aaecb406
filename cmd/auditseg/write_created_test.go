package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
)

// A write that fails before its first segment is ready (the disk is
// full) removes the directories it created for the log, which hold only
// its LOCK file; it used to leave DIR behind with LOCK in it. A
// directory that was there before the run stays, empty or not.
func TestWriteFailedFirstRunLeavesNoDirectory(t *testing.T) {
	mnt := testfs.Small(t, "128k") // less than one segment
	parent := filepath.Join(mnt, "new")
	dir := filepath.Join(parent, "log")
	_, stderr, code := execute(t, []byte("a\n"), "write", "-q", "--segment-size", "1MiB", dir)
	if code != exitUsage || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("exit %d (want %d), stderr %q", code, exitUsage, stderr)
	}
	if _, err := os.Lstat(parent); !os.IsNotExist(err) {
		ls, _ := os.ReadDir(dir)
		t.Fatalf("%s is still there after the failed first run (%v; the log directory holds %v)", parent, err, ls)
	}

	existing := filepath.Join(mnt, "existing")
	if err := os.Mkdir(existing, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", "--segment-size", "1MiB", existing); code != exitUsage {
		t.Fatalf("exit %d (want %d), stderr %q", code, exitUsage, stderr)
	}
	if st, err := os.Stat(existing); err != nil || !st.IsDir() {
		t.Fatalf("a log directory that was there before the run was removed: %v", err)
	}
}
