package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/testlog"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Standard streams whose reader has gone: a line on stderr is lost and the
// command goes on to the exit code its work gives (commandStderr); a
// consumer of stdout that went away ends the command by SIGPIPE, quietly.

// closedPipe is the write end of a pipe whose reader has gone (a consumer
// that exited, as head does; a log collector restarted).
func closedPipe(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close() })
	return w
}

// ended is how a run of the binary ended and what it printed.
type ended struct {
	stdout, stderr string
	code           int            // -1 if killed by a signal
	signal         syscall.Signal // the signal that killed it, or 0
}

func (e ended) String() string {
	if e.signal != 0 {
		return "killed by " + e.signal.String()
	}
	return fmt.Sprintf("exit %d", e.code)
}

// runBin runs bin with args, its stdout and stderr on the files given
// (nil: captured).
func runBin(t *testing.T, bin string, stdout, stderr *os.File, args ...string) ended {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	e := ended{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
		e.signal = ws.Signal()
	}
	return e
}

// TestVerifyWithStderrClosed: `verify` with stderr on a pipe whose reader
// has gone (`verify DIR 2>&1 >report | head`, a log collector restarted)
// writes its report in full and exits with the code its findings give.
// It was killed by SIGPIPE at its first line on stderr, here the warning
// for a directory with no segment: a clean run and a failing one alike
// ended as 141, no verdict (found by a hostile-user review).
func TestVerifyWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	cases := []struct {
		name string
		log  func(t *testing.T, dir string)
		code int
	}{
		{"clean", func(t *testing.T, dir string) { vLog(t, dir, "sealed", "sealed") }, verify.ExitClean},
		{"findings", vDamaged, verify.ExitFindings},
		{"unreadable", func(t *testing.T, dir string) {
			vLog(t, dir, "sealed")
			if err := os.Mkdir(filepath.Join(dir, "log", segment.FileName(2)), 0o750); err != nil {
				t.Fatal(err)
			}
		}, verify.ExitError},
		{"unfinished", func(t *testing.T, dir string) { vLog(t, dir, "sealed", "open") }, verify.ExitUnfinished},
	}
	for _, c := range cases {
		for _, output := range []string{"text", "json"} {
			dir := t.TempDir()
			c.log(t, dir)
			empty := filepath.Join(dir, "empty")
			if err := os.Mkdir(empty, 0o750); err != nil {
				t.Fatal(err)
			}
			args := []string{"verify", "-o", output, empty, filepath.Join(dir, "log")}
			want := runBin(t, bin, nil, nil, args...)
			if want.code != c.code || !strings.Contains(want.stderr, "holds no segment files") {
				t.Fatalf("%s -o %s, stderr read: %v, stderr %q; want exit %d and the warning", c.name, output, want, want.stderr, c.code)
			}
			got := runBin(t, bin, nil, closedPipe(t), args...)
			if got.code != c.code {
				t.Errorf("%s -o %s, stderr closed: %v; want exit %d", c.name, output, got, c.code)
			}
			if normalise(got.stdout) != normalise(want.stdout) {
				t.Errorf("%s -o %s, stderr closed: stdout\n%s\nwant\n%s", c.name, output, got.stdout, want.stdout)
			}
		}
	}
}

// TestVerifyWithStdoutClosed: a consumer of verify's report that went
// away (`verify DIR | head -1` having read its line) ends verify by
// SIGPIPE, quietly: killed, no exit code, so no gate can take a report
// that was not delivered for a clean log, and nothing said on stderr
// about a pipe its user closed on purpose.
func TestVerifyWithStdoutClosed(t *testing.T) {
	bin := buildBinary(t)
	for _, damaged := range []bool{false, true} {
		for _, output := range []string{"text", "json"} {
			dir := t.TempDir()
			if damaged {
				vDamaged(t, dir)
			} else {
				vLog(t, dir, "sealed", "sealed")
			}
			got := runBin(t, bin, closedPipe(t), nil, "verify", "-o", output, filepath.Join(dir, "log"))
			if got.signal != syscall.SIGPIPE || got.stderr != "" {
				t.Errorf("damaged %v -o %s, stdout closed: %v, stderr %q; want killed by SIGPIPE, nothing on stderr", damaged, output, got, got.stderr)
			}
		}
	}
}

// TestInspectWithClosedPipes: `inspect` with stderr closed dumps in full
// and keeps its exit code (1 for a file nothing of which decodes: its
// error line is lost, not the code); with stdout closed it ends by
// SIGPIPE, quietly, as verify.
func TestInspectWithClosedPipes(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	vDamaged(t, dir)
	seg := filepath.Join(dir, "log", segment.FileName(2)) // a torn record
	junk := filepath.Join(dir, segment.FileName(7)+".zst")
	if err := os.WriteFile(junk, []byte("not zstd"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		code int
	}{{seg, exitOK}, {junk, exitFailure}} {
		want := runBin(t, bin, nil, nil, "inspect", c.path)
		if want.code != c.code || (c.code == exitOK) != (want.stdout != "") {
			t.Fatalf("inspect %s: %v, %d bytes, stderr %q; want exit %d", c.path, want, len(want.stdout), want.stderr, c.code)
		}
		got := runBin(t, bin, nil, closedPipe(t), "inspect", c.path)
		if got.code != c.code || got.stdout != want.stdout {
			t.Errorf("inspect %s, stderr closed: %v, stdout\n%s\nwant exit %d, stdout\n%s", c.path, got, got.stdout, c.code, want.stdout)
		}
	}
	got := runBin(t, bin, closedPipe(t), nil, "inspect", seg)
	if got.signal != syscall.SIGPIPE || got.stderr != "" {
		t.Errorf("inspect, stdout closed: %v, stderr %q; want killed by SIGPIPE, nothing on stderr", got, got.stderr)
	}
}

// tornLog writes a log of three segments and tears a record of the first
// (a payload byte changed): tail reports the damage on stderr, skips the
// record and prints the others. It returns the log's directory.
func tornLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := testlog.Write(t, dir, writer.Options{SegmentSize: segment.MinSegmentSize}, 4000,
		func(i int) []byte { return fmt.Appendf(nil, "record %04d", i) })
	if len(l.Segments) < 3 {
		t.Fatalf("fixture: %d segments", len(l.Segments))
	}
	if err := flipByte(l.Segments[0].Path, segment.HeaderSize+segment.FrameHeaderSize+2); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTailWithStderrClosed: `tail` with stderr on a pipe whose reader has
// gone prints every readable record and keeps its exit code (1, damage
// reported) and cursor. It was killed by SIGPIPE at its first line there,
// the damage's, with the records after it not printed and the cursor not
// stored (found by a hostile-user review).
func TestTailWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	dir := tornLog(t)
	// The bulk replay of sealed segments, and the in-order path.
	for _, from := range [][]string{{"-n", "+1"}, {"--from", "1:0"}} {
		cursors := t.TempDir()
		args := func(name string) []string {
			return append(append([]string{"tail"}, from...), "--cursor-file", filepath.Join(cursors, name), dir)
		}
		want := runBin(t, bin, nil, nil, args("read")...)
		if want.code != exitFailure || !strings.Contains(want.stderr, segment.FileName(1)) {
			t.Fatalf("tail %s, stderr read: %v, stderr %q; want exit 1 naming the damage", from, want, want.stderr)
		}
		got := runBin(t, bin, nil, closedPipe(t), args("closed")...)
		if got.code != exitFailure || got.stdout != want.stdout {
			t.Errorf("tail %s, stderr closed: %v, %d bytes on stdout; want exit 1, %d bytes", from, got, len(got.stdout), len(want.stdout))
			continue
		}
		if a, b := readCursorFile(t, filepath.Join(cursors, "read")), readCursorFile(t, filepath.Join(cursors, "closed")); a != b {
			t.Errorf("tail %s, stderr closed: cursor %+v; with stderr read %+v", from, b, a)
		}
	}
}

// TestTailWithStdoutClosed: with both streams on pipes whose reader has
// gone, tail ends as `tail | head` does, whatever it has to say on stderr:
// by SIGPIPE, the cursor not stored (the consumer may not have read
// what was printed).
func TestTailWithStdoutClosed(t *testing.T) {
	bin := buildBinary(t)
	dir := tornLog(t)
	cur := filepath.Join(t.TempDir(), "cursor")
	got := runBin(t, bin, closedPipe(t), closedPipe(t), "tail", "-n", "+1", "--cursor-file", cur, dir)
	if got.signal != syscall.SIGPIPE {
		t.Errorf("tail, stdout and stderr closed: %v; want killed by SIGPIPE", got)
	}
	if _, err := os.Stat(cur); !os.IsNotExist(err) {
		t.Errorf("cursor stored (%v) although no record reached a reader", err)
	}
}

// TestTailFollowWithStderrClosed: `tail -f` with stderr's reader gone
// follows on past the damage it reports there: it was killed by SIGPIPE at
// that line, before the records after it and every one appended later.
// SIGTERM ends it, exit 1 for the damage.
func TestTailFollowWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	dir, w := liveLog(t)
	var want []string
	for i := range 3000 { // segments 1 and 2 sealed, 3 live
		rec := fmt.Sprintf("record %04d", i)
		if _, err := w.Append([]byte(rec)); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	if err := flipByte(filepath.Join(dir, segment.FileName(1)), segment.HeaderSize+segment.FrameHeaderSize+2); err != nil {
		t.Fatal(err)
	}
	tp := startTailErr(t, bin, closedPipe(t), "-f", "-n", "+1", dir)
	tp.expect(t, want[1:]) // record 0 torn
	var after []string
	for i := range 3 {
		rec := fmt.Sprintf("after %d", i)
		if _, err := w.Append([]byte(rec)); err != nil {
			t.Fatal(err)
		}
		after = append(after, rec)
	}
	tp.expect(t, after)
	if err := tp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for extra := range tp.lines {
		t.Errorf("line %q after the records appended", extra)
	}
	var ee *exec.ExitError
	if err := tp.cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("tail -f after SIGTERM: %v; want exit 1 (damage reported)", err)
	}
}

// TestCompressWithStdoutClosed: compress-finished writes its summary once
// its work is done; a reader of it that went away ends the run there by
// SIGPIPE, as for every command, with every sealed segment archived and
// the log reading as before.
func TestCompressWithStdoutClosed(t *testing.T) {
	bin := buildBinary(t)
	dir, recs := compressLog(t, 5000)
	got := runBin(t, bin, closedPipe(t), nil, "compress-finished", dir)
	if got.signal != syscall.SIGPIPE || got.stderr != "" {
		t.Fatalf("compress-finished, stdout closed: %v, stderr %q; want killed by SIGPIPE, nothing on stderr", got, got.stderr)
	}
	archived := 0
	for _, e := range listing(t, dir).Segments {
		if e.Archived {
			archived++
		}
	}
	if archived < 2 {
		t.Errorf("%d segments archived", archived)
	}
	if got := payloads(t, dir); !slices.EqualFunc(got, recs, bytes.Equal) {
		t.Errorf("%d records read after the run, want the %d written", len(got), len(recs))
	}
}
