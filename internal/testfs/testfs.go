// Package testfs holds file-system fixtures shared by the tests of several
// packages: a size-limited tmpfs to run out of space on, a filler, a
// counter of the opens in a directory, and a child process to run a test
// in where a truncated file may kill it.
package testfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Small mounts a tmpfs of size (a mount option value such as "1m") on a
// fresh directory and unmounts it when the test ends. Mounting needs root
// (CI runs as root); elsewhere the test is skipped with the reason.
func Small(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a size-limited tmpfs on %s (%v): the disk-full tests need root", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full and returns its
// path; removing it frees the space again.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// Empty removes every file in dir and keeps the directory itself (same
// inode): a log deleted in place, to be begun again there.
func Empty(t testing.TB, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
