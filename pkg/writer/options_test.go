package writer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSyncMode(t *testing.T) {
	for s, want := range map[string]SyncMode{"none": SyncNone, "interval": SyncInterval, "always": SyncAlways} {
		if m, err := ParseSyncMode(s); err != nil || m != want {
			t.Errorf("%q -> %v, %v; want %v", s, m, err, want)
		}
	}
	for _, s := range []string{"", "Always", "fsync", " none", "SyncMode(3)"} {
		if _, err := ParseSyncMode(s); err == nil || !strings.Contains(err.Error(), "want none, interval or always") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzParseSyncMode: what is accepted is exactly a mode's name.
func FuzzParseSyncMode(f *testing.F) {
	for _, s := range []string{"none", "interval", "always", "", "ALWAYS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSyncMode(s)
		if err == nil && m.String() != s {
			t.Fatalf("%q accepted as %v", s, m)
		}
		if err != nil && (s == "none" || s == "interval" || s == "always") {
			t.Fatalf("%q refused: %v", s, err)
		}
	})
}

// A log directory that is a dangling symlink, or a loop, is named as
// such: Open said "mkdir DIR: file exists" (found by a hostile-user
// review), and there was no DIR to be seen.
func TestOpenNamesABrokenSymlinkForADirectory(t *testing.T) {
	tmp := t.TempDir()
	dangling, loop := filepath.Join(tmp, "dangling"), filepath.Join(tmp, "loop")
	for _, l := range [][2]string{{"nowhere", dangling}, {"loop", loop}} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	for dir, why := range map[string]string{dangling: "no such file", loop: "too many levels of symbolic links"} {
		w, err := Open(dir, Options{SegmentSize: 64 << 10})
		if err == nil {
			w.Close()
			t.Fatalf("%s: opened", dir)
		}
		if want := dir + " is a symbolic link to "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v; want %q and %q", dir, err, want, why)
		}
	}
}
