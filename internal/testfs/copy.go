package testfs

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CopyFiles copies the regular files of the log directory src into dst
// (created if missing), as they were at one instant. Copying a live
// writer's directory is how tests take the files as a crash would leave
// them, and a crash leaves them as they were at one instant; one reading
// of the files, each read at its own moment while the writer's
// background goroutines go on sealing and preparing, need not: segment 1
// read before its footer was written, segment 2 after its own was, is a
// log no crash leaves (segments are sealed in order) and that verify
// rightly reports as damaged. So the directory is read until two
// readings in a row agree. The writer only moves its files forward
// (bytes written once over zeros, commit words from reserved to
// committed, temporary files renamed): files that are the same in two
// readings were so throughout between them, and a file made, renamed or
// removed between them shows as a difference.
func CopyFiles(t testing.TB, src, dst string) {
	t.Helper()
	files := Snapshot(t, src)
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// Snapshot returns the content of each regular file of dir by name, as
// it was at one instant (CopyFiles). A directory whose files are still
// changing after a minute fails the test: a writer that never settles,
// not a measurement.
func Snapshot(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	prev := readFiles(t, dir)
	for deadline := time.Now().Add(time.Minute); ; {
		now := readFiles(t, dir)
		if maps.EqualFunc(prev, now, func(a, b []byte) bool { return string(a) == string(b) }) {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the files of %s still change after a minute: no instant to copy them at", dir)
		}
		prev = now
	}
}

// readFiles reads the regular files of dir once, passing over a file gone
// between the listing and its read (a temporary file renamed).
func readFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = b
	}
	return m
}
