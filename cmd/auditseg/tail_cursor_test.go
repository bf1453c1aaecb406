package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailCursorOtherLog: a cursor meeting another log, or its own log
// deleted and begun again, is refused (exit 2) instead of skipping that
// log's records up to the old position; one whose segment retention
// removed, or one written without a creation time, still resumes.
func TestTailCursorOtherLog(t *testing.T) {
	write := func(dir string, recs ...string) {
		t.Helper()
		w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if _, err := w.Append([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	bigs := func(n int, last string) []string {
		r := make([]string, n, n+1)
		for i := range r {
			r[i] = strings.Repeat("x", 8000)
		}
		return append(r, last)
	}
	a, b := t.TempDir(), t.TempDir()
	write(a, bigs(30, "a-last")...) // four segments
	write(b, "b1", "b2")
	cur := filepath.Join(t.TempDir(), "cursor")
	if _, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, a); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Past b's newest segment.
	out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, b)
	if code != exitUsage || out != "" || !strings.Contains(stderr, "past the newest segment") || !strings.Contains(stderr, "Remove "+cur) {
		t.Fatalf("cursor of a longer log: exit %d, out %q, %q", code, out, stderr)
	}
	// Same sequence number, another segment: log a begun again.
	pa, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(a); err != nil {
		t.Fatal(err)
	}
	write(a, bigs(40, "new")...)
	out, stderr, code = execute(t, nil, "tail", "--cursor-file", cur, a)
	if code != exitUsage || out != "" || !strings.Contains(stderr, "was created") {
		t.Fatalf("cursor of a log begun again: exit %d, out %q, %q", code, out, stderr)
	}
	// Without the creation time (an older cursor file) it resumes.
	c, err := parseCursor(string(pa))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cur, []byte(c.pos.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, a); code != exitOK || out == "" {
		t.Fatalf("cursor without creation time: exit %d, out %q, %q", code, out, stderr)
	}
	// Its own log, the cursor's segment since removed: it resumes after it.
	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	write(b, bigs(40, "b-last")...)
	if out, stderr, code := execute(t, nil, "tail", "-n", "1", "--cursor-file", cur, b); code != exitOK || out != "b-last\n" {
		t.Fatalf("exit %d, out %q: %s", code, out, stderr)
	}
	write(b, "after")
	pb, _ := os.ReadFile(cur)
	cb, err := parseCursor(string(pb))
	if err != nil {
		t.Fatal(err)
	}
	// Retention removes the oldest first: with an older segment still
	// there, the cursor's would be a hole in the log (TestTailFromInAHole).
	for s := uint64(1); s <= cb.pos.Seq; s++ {
		if err := os.Remove(filepath.Join(b, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
	// Said on stderr, as a removal while tail reads is: a consumer behind
	// retention. Once silent.
	out, stderr, code = execute(t, nil, "tail", "--cursor-file", cur, b)
	warn := fmt.Sprintf("auditseg tail: warning: segment %d, where cursor file %s is (%s), was removed since the cursor was stored: any records after %s in it were not read; resuming at segment %d\n",
		cb.pos.Seq, cur, cb.pos, cb.pos, cb.pos.Seq+1)
	if code != exitOK || out != "after\n" || stderr != warn {
		t.Fatalf("cursor in a removed segment: exit %d, out %q, stderr %q, want %q", code, out, stderr, warn)
	}
	// Several segments after it removed too.
	write(b, bigs(40, "c-last")...)
	pb, _ = os.ReadFile(cur)
	if cb, err = parseCursor(string(pb)); err != nil {
		t.Fatal(err)
	}
	first := cb.pos.Seq + 3
	for s := cb.pos.Seq; s < first; s++ {
		if err := os.Remove(filepath.Join(b, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code = execute(t, nil, "tail", "--cursor-file", cur, b)
	warn = fmt.Sprintf("auditseg tail: warning: segments %d to %d were removed since cursor file %s was stored (at %s): any records after %s in segment %d and those of segments %d to %d were not read; resuming at segment %d\n",
		cb.pos.Seq, first-1, cur, cb.pos, cb.pos, cb.pos.Seq, cb.pos.Seq+1, first-1, first)
	if code != exitOK || !strings.HasSuffix(out, "c-last\n") || stderr != warn {
		t.Fatalf("cursor behind several removed segments: exit %d, out ends %q, stderr %q, want %q", code, out[max(0, len(out)-20):], stderr, warn)
	}
	// The next run, from the cursor it stored, says nothing.
	if out, stderr, code = execute(t, nil, "tail", "--cursor-file", cur, b); code != exitOK || out != "" || stderr != "" {
		t.Fatalf("run after: exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// A run that could not read a segment does not store its cursor past it:
// the next run would never deliver that segment's records (found by a
// hostile-environment review: 2,041 records lost to a chmod 000). The
// unreadable segment is made so by permissions, for a child running as
// nobody when the test runs as root.
func TestTailCursorNotPastUnreadable(t *testing.T) {
	base, err := os.MkdirTemp("", "cursor-unreadable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir, cur := filepath.Join(base, "log"), filepath.Join(base, "cursor")
	writeBig(t, dir, 40)
	l, err := segment.List(dir)
	if err != nil || len(l.Segments) < 4 {
		t.Fatalf("%d segments, %v", len(l.Segments), err)
	}
	for _, p := range []string{base, dir, filepath.Join(dir, segment.LockName)} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range l.Segments {
		mode := os.FileMode(0o644)
		if i == 1 {
			mode = 0
		}
		if err := os.Chmod(e.Path, mode); err != nil {
			t.Fatal(err)
		}
	}
	var code int
	var stderr string
	if os.Geteuid() == 0 {
		bin := filepath.Join(base, "auditseg")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		_, stderr, code = runNobody(t, bin, "tail", "-n", "+1", "--cursor-file", cur, dir)
	} else {
		_, stderr, code = execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, dir)
	}
	if code != exitUsage || !strings.Contains(stderr, "not updated") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(cur); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cursor file stored past an unreadable segment: %v", err)
	}
}

// TestTailCursorNotARegularFile: a cursor file that is a FIFO blocked tail
// until something wrote to it, and one linked to /dev/zero filled memory;
// both are refused at once with exit 2, as segments are.
func TestTailCursorNotARegularFile(t *testing.T) {
	dir, _ := compressLog(t, 100)
	fifo := filepath.Join(t.TempDir(), "cursor.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(t.TempDir(), "cursor.zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, cur := range []string{fifo, zero} {
		_, stderr, code := execute(t, nil, "tail", "-n", "1", "--cursor-file", cur, dir)
		if code != exitUsage || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("%s: exit %d, %q; want %d and 'not a regular file'", cur, code, stderr, exitUsage)
		}
	}
}

// TestTailSegmentFileCursorOtherLog: a cursor file written while tailing a
// segment file of one log is refused (exit 2) when it meets the segment
// file of the same number in another log, as it is for a directory: it
// would skip that file's records up to the old offset.
func TestTailSegmentFileCursorOtherLog(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, stderr, code := execute(t, []byte("a-first-record\na-second-record\na-third-record\n"), "write", "-q", "--segment-size", "64KiB", a); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := execute(t, []byte("b1\nb2\n"), "write", "-q", "--segment-size", "64KiB", b); code != 0 {
		t.Fatal(stderr)
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	segA, segB := filepath.Join(a, segment.FileName(1)), filepath.Join(b, segment.FileName(1))
	if out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, segA); code != exitOK || !strings.HasSuffix(out, "a-third-record\n") {
		t.Fatalf("exit %d, out %q: %s", code, out, stderr)
	}
	c, _ := os.ReadFile(cur)
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, segB)
	if code != exitUsage {
		t.Fatalf("cursor %q of %s used on %s: exit %d, out %q, stderr %q; want exit 2 (another log), not b's records skipped",
			strings.TrimSpace(string(c)), segA, segB, code, out, stderr)
	}
}

// TestTailCursorIsADirectory: a --cursor-file that is a directory (a
// path given with the file name left out) was refused as "not a regular
// file", and one that became a directory while tail ran failed to be
// stored with "file exists" (os.Rename onto a directory). Both name the
// path and say it is a directory; exit 2 either way, and nothing printed
// in the first case.
func TestTailCursorIsADirectory(t *testing.T) {
	dir, _ := compressLog(t, 100)
	cur := filepath.Join(t.TempDir(), "cursor")
	if err := os.Mkdir(cur, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cur, cur + "/"} {
		out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", p, dir)
		if want := p + ": cursor file: is a directory, not a regular file"; code != exitUsage || out != "" || stderr != want {
			t.Errorf("read: exit %d, %d bytes out, stderr %q; want %d, none, %q", code, len(out), stderr, exitUsage, want)
		}
	}

	later := filepath.Join(t.TempDir(), "cursor")
	out := &truncateOnFirstWrite{t: t, change: func() error { return os.Mkdir(later, 0o755) }}
	stderr, code := executeTo(t, out, nil, "tail", "-n", "+1", "--cursor-file", later, dir)
	if want := later + ": cannot store the cursor file: is a directory, not a regular file"; code != exitUsage || stderr != want {
		t.Errorf("store: exit %d, stderr %q; want %d, %q", code, stderr, exitUsage, want)
	}
}

// TestTailCursorSegmentZero: sequence numbers start at 1, so no run stores
// a cursor in segment 0; one that holds it (hand-edited, or garbage) was
// taken for a cursor whose segment retention removed, with a warning that
// segment 0 "was removed since the cursor was stored", and the log was
// read from its start. It is refused as unreadable (exit 2), as other
// garbage is, and nothing is printed.
func TestTailCursorSegmentZero(t *testing.T) {
	dir, _ := compressLog(t, 100)
	for _, content := range []string{"0:0\n", "0:64 2026-11-29T00:01:41.954309055Z\n"} {
		cur := filepath.Join(t.TempDir(), "cursor")
		if err := os.WriteFile(cur, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, dir)
		if code != exitUsage || out != "" || !strings.HasPrefix(stderr, cur+": cursor file: ") || strings.Contains(stderr, "removed") {
			t.Errorf("cursor %q: exit %d, %d bytes out, stderr %q; want %d, nothing printed, the cursor file refused",
				content, code, len(out), stderr, exitUsage)
		}
	}
}

// TestTailCursorNamedAsTheLogsFile: a cursor file given a name the log
// uses in its own directory (a segment the writer has yet to reach, its
// archive or temporary file, LOCK) is refused before anything is printed
// (exit 2) and not made. `tail --cursor-file DIR/<segment 9's name> DIR`
// stored the cursor as segment 9: the next writer recovered it as a
// damaged segment and continued after it, and verify reported a gap and a
// torn header from then on (exit 1). A segment's name in another
// directory is only a name; one given as the single-file argument's
// directory is the log's.
func TestTailCursorNamedAsTheLogsFile(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
		t.Fatal(stderr)
	}
	before, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{segment.FileName(9), segment.ArchiveName(9), segment.FileName(9) + segment.TempExt, segment.LockName} {
		cur := filepath.Join(dir, name)
		for _, arg := range []string{dir, filepath.Join(dir, segment.FileName(1))} {
			out, stderr, code := execute(t, nil, "tail", "-n", "1", "--cursor-file", cur, arg)
			if code != exitUsage || out != "" || !strings.Contains(stderr, fmt.Sprintf("cursor file %s: %s is the name of one of the log's own files in %s", cur, name, dir)) {
				t.Errorf("tail --cursor-file %s %s: exit %d, out %q, stderr %q", cur, arg, code, out, stderr)
			}
		}
	}
	after, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("the log directory held %d files, %d after", len(before), len(after))
	}
	if _, stderr, code := execute(t, nil, "verify", dir); code != 0 {
		t.Fatalf("verify: exit %d: %s", code, stderr)
	}
	elsewhere := filepath.Join(t.TempDir(), segment.FileName(9))
	if out, stderr, code := execute(t, nil, "tail", "-n", "1", "--cursor-file", elsewhere, dir); code != exitOK || out != "b\n" {
		t.Fatalf("a segment's name outside the log: exit %d, out %q, stderr %q", code, out, stderr)
	}
}
