package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// Something other than a regular file with a segment's file name (a
// directory, a FIFO) is a segment that cannot be read: named with what it
// is, and skipped, exit 2, in order and in bulk, and a FIFO does not
// block tail. In the middle of the log it was a hole (exit 1); as the
// newest segments, nothing: tail printed the records before them and
// exited 0, theirs lost without a word.
func TestTailNamesWhatTakesASegmentsName(t *testing.T) {
	kinds := map[string]func(string) error{
		"is a directory":         func(p string) error { return os.Mkdir(p, 0o755) },
		"is a named pipe (FIFO)": func(p string) error { return syscall.Mkfifo(p, 0o644) },
	}
	for _, where := range []string{"middle", "newest"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			pos := timedLog(t, dir, 12000, time.Unix(1_700_000_000, 0))
			last := pos[len(pos)-1].Seq
			if last < 4 {
				t.Fatalf("only %d segments", last)
			}
			odd := map[uint64]string{2: "is a directory", 3: "is a named pipe (FIFO)"}
			if where == "newest" {
				odd = map[uint64]string{last - 1: "is a named pipe (FIFO)", last: "is a directory"}
			}
			for seq, what := range odd {
				p := filepath.Join(dir, segment.FileName(seq))
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := kinds[what](p); err != nil {
					t.Fatal(err)
				}
			}
			var want strings.Builder
			for i, at := range pos {
				if _, ok := odd[at.Seq]; !ok {
					fmt.Fprintf(&want, "rec-%d\n", i)
				}
			}
			for _, args := range [][]string{{"-n", "+1"}, {"--from", "1:64"}} {
				done := make(chan struct{})
				var stdout, stderr string
				var code int
				go func() {
					defer close(done)
					stdout, stderr, code = execute(t, nil, append(append([]string{"tail"}, args...), dir)...)
				}()
				select {
				case <-done:
				case <-time.After(time.Minute):
					t.Fatalf("tail %v: not done after a minute", args)
				}
				if code != exitUsage || stdout != want.String() {
					t.Errorf("tail %v: exit %d, %d bytes out (stderr %q); want %d, %d bytes", args, code, len(stdout), stderr, exitUsage, want.Len())
				}
				for seq, what := range odd {
					if w := filepath.Join(dir, segment.FileName(seq)) + ": cannot open segment: " + what + ", not a regular file"; !strings.Contains(stderr, w) {
						t.Errorf("tail %v: stderr %q does not say %q", args, stderr, w)
					}
				}
			}
		})
	}
}

// A PATH that is neither a directory nor a regular file is named for
// what it is, as verify names it: tail said "list log directory: open
// PATH: not a directory" of a FIFO or a device, which reads as a
// mistyped directory (found by a hostile-user review).
func TestTailNamesAPathThatIsNoLog(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ff")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, fifo + ": is a named pipe (FIFO), not a regular file"},
		{link, link + ": is a named pipe (FIFO), not a regular file"},
		{"/dev/null", "/dev/null: is a character device, not a regular file"},
	} {
		for _, args := range [][]string{{"-n", "+1"}, {"-f"}} {
			out, stderr, code := execute(t, nil, append(append([]string{"tail"}, args...), c.path)...)
			if code != exitUsage || out != "" || stderr != c.want {
				t.Errorf("tail %v %s: exit %d, stdout %q, stderr %q; want %d, nothing, %q", args, c.path, code, out, stderr, exitUsage, c.want)
			}
		}
	}
}
