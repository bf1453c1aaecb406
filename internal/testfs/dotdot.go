package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

// DotDotName returns a log directory's name, made through a symbolic link
// followed by "..", and the two directories it names: cleaned, for
// filepath.Join and segment.CleanName (base/log), and resolved, for
// open(2) (base/releases/log, current linking to releases/r1). Both are
// made, empty. The name must read as cleaned wherever auditseg uses it:
// that is the directory writer.Open appends to.
func DotDotName(t testing.TB) (name, cleaned, resolved string) {
	t.Helper()
	base := t.TempDir()
	cleaned = filepath.Join(base, "log")
	resolved = filepath.Join(base, "releases", "log")
	for _, d := range []string{filepath.Join(base, "releases", "r1"), cleaned, resolved} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(base, "releases", "r1"), filepath.Join(base, "current")); err != nil {
		t.Fatal(err)
	}
	return base + "/current/../log", cleaned, resolved // not Join: it cleans
}
