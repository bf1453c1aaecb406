package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// deniedLog writes a log of 4 or more segments, the files of those deny
// is true for 0600 (root's: nobody may not open them), the rest and the
// directories readable by all, and builds the binary beside it.
// first2 and first3 are the numbers of segment 2's and 3's first records
// (writeBig numbers records from 0).
func deniedLog(t *testing.T, deny func(seq uint64) bool) (dir string, l segment.Listing, first2, first3 int, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run tail as another user")
	}
	base, err := os.MkdirTemp("", "tail-denied")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir = filepath.Join(base, "log")
	writeBig(t, dir, 40)
	l, err = segment.List(dir)
	if err != nil || len(l.Segments) < 4 {
		t.Fatalf("%d segments, %v", len(l.Segments), err)
	}
	for i, p := range []*int{&first2, &first3} {
		f, err := segment.ReadFooter(l.Segments[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		*p = first2 + int(f.Records)
	}
	for _, p := range []string{base, dir, filepath.Join(dir, segment.LockName)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range l.Segments {
		mode := os.FileMode(0o644)
		if deny(e.Seq) {
			mode = 0o600 // root's: nobody may not open it
		}
		if err := os.Chmod(e.Path, mode); err != nil {
			t.Fatal(err)
		}
	}
	bin = filepath.Join(base, "auditseg")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir, l, first2, first3, bin
}

// asNobody is cmd, to be started, run as uid and gid 65534.
func asNobody(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd
}

// runNobody runs bin with args as nobody (asNobody) and returns its
// output and exit code.
func runNobody(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := asNobody(exec.Command(bin, args...))
	var eb strings.Builder
	cmd.Stderr = &eb
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), eb.String(), cmd.ProcessState.ExitCode()
}

// tail -f stops at a segment its user may not open, exit 2, rather than
// skip it and follow on: a writer makes every later segment alike (a log
// chgrp'ed for an auditor in a directory without set-group-ID gets new
// segments in root's group), so a follow went on for ever printing one
// "permission denied" per segment and none of their records (and never
// stored its cursor). Run as nobody: root passes any permission.
func TestTailFollowStopsAtDeniedSegment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run tail as another user")
	}
	dir, l, first2, first3, bin := deniedLog(t, func(seq uint64) bool { return seq == 2 })
	cmd := asNobody(exec.Command(bin, "tail", "-f", "-n", "+1", dir))
	var eb strings.Builder
	cmd.Stderr = &eb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var printed []int
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.Fields(sc.Text())[0])
		if err != nil {
			t.Errorf("line %q", sc.Text())
		}
		printed = append(printed, n)
		if n >= first3 { // the follow passed segment 2
			cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	want := l.Segments[1].Path + ": cannot open segment: permission denied"
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || len(printed) != first2 || !strings.Contains(eb.String(), want) {
		t.Fatalf("exit %d, printed %v, stderr %q; want exit 2, records 0 to %d, %q", code, printed, eb.String(), first2-1, want)
	}
}

// A replay that could read no segment from its start on says so (exit 2),
// and not that the log holds no record after it: `tail --from 2:0` as a
// user who may not read segments 2 and on warned "no record at or after
// 2:0; the last record is at 1:...".
func TestTailFromNoWarningWhenDenied(t *testing.T) {
	dir, l, _, _, bin := deniedLog(t, func(seq uint64) bool { return seq >= 2 })
	out, stderr, code := runNobody(t, bin, "tail", "--from", "2:0", dir)
	want := fmt.Sprintf("%d segments could not be read", len(l.Segments)-1)
	if code != exitUsage || len(out) != 0 || !strings.Contains(stderr, want) || strings.Contains(stderr, "no record at or after") {
		t.Fatalf("exit %d, %d bytes out, stderr %q; want exit 2, %q and no word of the last record", code, len(out), stderr, want)
	}
}

// compress-finished run by a user who may read the log but not write its
// directory (an auditor in its group) fails at once, exit 2, naming the
// directory, and leaves the log as it was; it failed each segment with
// its own "create archive: ... permission denied" line, exit 1.
func TestCompressFinishedDirectoryNotWritable(t *testing.T) {
	dir, l, _, _, bin := deniedLog(t, func(uint64) bool { return false })
	_, stderr, code := runNobody(t, bin, "compress-finished", dir)
	want := dir + ": permission denied"
	if code != exitUsage || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, stderr, want)
	}
	after, err := segment.List(dir)
	if err != nil || len(after.Segments) != len(l.Segments) {
		t.Fatalf("after: %d segments, %v; before %d", len(after.Segments), err, len(l.Segments))
	}
	for _, e := range after.Segments {
		if e.Archived {
			t.Errorf("%s archived", e.Path)
		}
	}
}
