package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A segment tail cannot open is named once, first, on its line. It was
// named twice: "PATH: cannot open segment: PATH: 2147483648 bytes is
// larger than any segment", as with a plain OS error ("open PATH:
// permission denied", which the tests, run as root, cannot provoke).
func TestTailUnopenableSegmentNamedOnce(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", "--segment-size", "64KiB", dir); code != exitOK {
		t.Fatal(stderr)
	}
	p := filepath.Join(dir, segment.FileName(3))
	if err := os.WriteFile(p, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 2*segment.MaxSegmentSize); err != nil { // sparse
		t.Fatal(err)
	}
	_, stderr, _ := execute(t, nil, "tail", dir)
	var line string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, p) {
			line = l
			break
		}
	}
	want := "auditseg tail: " + p + ": cannot open segment: "
	if !strings.HasPrefix(line, want) || strings.Count(line, p) != 1 {
		t.Errorf("stderr %q: want a line starting %q naming %s once", stderr, want, p)
	}
}

// A cursor file that cannot be stored (its directory missing) is refused
// before any record is printed, naming the cursor file. It was found
// only after the records were printed, so the position was lost, and was
// named by the temporary file's name: "write cursor file: open
// DIR/.cur.NNN.tmp: no such file or directory".
func TestTailCursorDirectoryCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != exitOK {
		t.Fatal(stderr)
	}
	cur := filepath.Join(t.TempDir(), "missing", "cur")
	out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, dir)
	want := cur + ": cannot store the cursor file: its directory: no such file or directory"
	if code != exitUsage || out != "" || stderr != want {
		t.Fatalf("exit %d (want %d), stdout %q (want none), stderr %q (want %q)", code, exitUsage, out, stderr, want)
	}
}
