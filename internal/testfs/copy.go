package testfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// CopyFiles copies the regular files of the log directory src into dst
// (created if missing). A file gone between the listing and its read is
// passed over: copying a live writer's directory is how tests take the
// files as a crash would leave them, and the writer renames its temporary
// files meanwhile.
func CopyFiles(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
