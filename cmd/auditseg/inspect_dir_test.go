package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestInspectDirectory: inspect given a directory says plainly that it is
// one and that inspect takes a segment file. A directory holding no
// segment (named like one, 00000000000000000001.seg, or not) was answered
// "inspect dumps one segment file, such as DIR/00000000000000000001.seg",
// a file that is not there, and sent to verify as if it were a log; one
// holding segments still names its first and points to verify.
func TestInspectDirectory(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{segment.FileName(1), segment.ArchiveName(7), "empty"} {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := execute(t, nil, "inspect", dir)
		if code != exitUsage || out != "" {
			t.Errorf("%s: exit %d, out %q, %s", name, code, out, stderr)
		}
		want := dir + " is a directory, not a segment file: inspect takes one segment file (a .seg file, or its .seg.zst archive), and " + dir + " holds none"
		if !strings.Contains(stderr, want) || strings.Contains(stderr, dir+string(filepath.Separator)) || strings.Contains(stderr, "verify") {
			t.Errorf("%s: %q, want %q and no file inside it", name, stderr, want)
		}
	}
	log := filepath.Join(base, "log")
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", "--segment-size", "64KiB", log); code != exitOK {
		t.Fatal(stderr)
	}
	_, stderr, code := execute(t, nil, "inspect", log)
	first := filepath.Join(log, segment.FileName(1))
	if code != exitUsage || !strings.Contains(stderr, log+" is a directory, not a segment file: inspect takes one segment file, such as "+first) ||
		!strings.Contains(stderr, "'auditseg verify "+log+"' checks a whole log") {
		t.Errorf("log directory: exit %d, %q", code, stderr)
	}
}
