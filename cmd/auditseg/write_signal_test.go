package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/verify"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestWriteSignalCommitsWhatWasRead: after SIGTERM every byte fed to
// `write` is accounted for exactly: committed, still in the pipe (never
// read), or reported as an incomplete record. With --sync always the
// appends are slower than the input, so blocks read from stdin queue up
// behind them when the signal comes; they were once dropped. SIGHUP (a
// closed terminal) is taken the same way: it once killed the command,
// blocks read and not committed with it (found by a hostile-user review).
func TestWriteSignalCommitsWhatWasRead(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) { testWriteSignalCommitsWhatWasRead(t, sig) })
	}
}

func testWriteSignalCommitsWhatWasRead(t *testing.T, sig syscall.Signal) {
	// Under nohup the child would inherit the ignored SIGHUP and read on
	// past it, as it must (TestWriteUnderNohup): the test hung there (a
	// CI run started with nohup, 10 min).
	catchIgnored(sig)
	dir, cmd, pr, pw, stderr := startSlowWrite(t)
	var fed bytes.Buffer
	for i := range 400 {
		line := fmt.Sprintf("record %04d %s\n", i, strings.Repeat("x", i%50))
		if i == 399 {
			line = strings.TrimSuffix(line, "\n") // an incomplete record at the end
		}
		if _, err := pw.WriteString(line); err != nil {
			t.Fatal(err)
		}
		fed.WriteString(line)
		time.Sleep(50 * time.Microsecond)
	}
	// Not before the command has set up its signals: the lines above fit
	// in the pipe, and a child slow to start was killed by the signal.
	waitForRecord(t, dir)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	// Bounded: a command that does not take the signal waits for its
	// input for ever (a hang, not a measurement).
	stop := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	if !stop.Stop() {
		t.Fatalf("write did not exit within a minute of %v (killed): %s", sig, stderr.String())
	}
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	pw.Close()
	left, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	committed := committedInput(t, dir)
	// committed + [incomplete record read] + left in the pipe = fed.
	in := fed.Bytes()
	if !bytes.HasPrefix(in, committed.Bytes()) {
		t.Fatalf("the log is not a prefix of the input: %d bytes committed", committed.Len())
	}
	rest := in[committed.Len():]
	dropped := len(rest) - len(left)
	if !bytes.HasSuffix(rest, left) || dropped < 0 {
		t.Fatalf("%d bytes committed and %d left in the pipe do not add up to the %d fed", committed.Len(), len(left), len(in))
	}
	if bytes.IndexByte(rest[:dropped], '\n') >= 0 {
		t.Fatalf("%d bytes were read and not committed, complete records among them (%d committed, %d left in the pipe); stderr: %s",
			dropped, committed.Len(), len(left), stderr.String())
	}
	want := fmt.Sprintf("input committed up to offset %d", committed.Len())
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q does not say %q", stderr.String(), want)
	}
	if !strings.Contains(stderr.String(), "interrupted: committing the input already read; interrupt again to stop now\n") {
		t.Fatalf("stderr %q does not acknowledge the signal", stderr.String())
	}
	if dropped > 0 && !strings.Contains(stderr.String(), fmt.Sprintf("the %d bytes after it", dropped)) {
		t.Fatalf("stderr %q does not report the %d bytes of the incomplete record", stderr.String(), dropped)
	}
}

// TestWriteSecondSignal: a second signal stops committing what was read
// (with --sync always that can take long), reports exactly how many bytes
// were read and not committed, and exits 1.
func TestWriteSecondSignal(t *testing.T) {
	// Two different stop signals: sent while the command is stopped, two
	// of the same would be one pending signal.
	first := syscall.SIGHUP
	catchIgnored(first) // under nohup the command would ignore it too
	dir, cmd, pr, pw, stderr := startSlowWrite(t)
	t.Cleanup(func() { cmd.Process.Kill() }) // no stopped child left behind (a no-op once waited for)
	// Feed empty records, faster than they are made durable one by one,
	// until told: the pipe stays full, so the command holds three blocks
	// of 4 KiB, each record waiting for its own flush. Non-blocking
	// writes, so that the feeder stops at once when the command does not
	// read, and under fedMu, so that what was fed and what is still in
	// the pipe can be read together.
	var fedMu sync.Mutex
	var fed int64
	var stop atomic.Bool
	fedDone := make(chan struct{})
	rc, err := pw.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(fedDone)
		chunk := bytes.Repeat([]byte{'\n'}, 512)
		for !stop.Load() {
			var n int
			var werr error
			fedMu.Lock()
			rc.Write(func(fd uintptr) bool { n, werr = syscall.Write(int(fd), chunk); return true })
			fed += int64(max(n, 0))
			fedMu.Unlock()
			if werr == syscall.EAGAIN {
				time.Sleep(50 * time.Microsecond) // the pipe is full: the command is behind
			} else if werr != nil {
				return
			}
		}
	}()
	// Records are being committed: the command has set up its signals
	// and listens for the first.
	waitForRecord(t, dir)
	// Stop the command where it holds complete records read and not
	// committed (it nearly always does: stopped between a block finished
	// and the next one read, it is resumed and stopped again). Both
	// signals are sent while it is stopped: it takes them as it resumes,
	// with that backlog still to commit, however fast its disk is and
	// however late this test would have reacted to a notice.
	pid := cmd.Process.Pid
	for backlog := int64(0); backlog <= 0; {
		stopProcess(t, pid)
		fedMu.Lock()
		inPipe, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ) // FIONREAD
		if err != nil {
			t.Fatal(err)
		}
		backlog = fed - int64(inPipe) - int64(committedInput(t, dir).Len())
		fedMu.Unlock()
		if backlog <= 0 {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	<-fedDone
	for _, sig := range []syscall.Signal{first, syscall.SIGTERM} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	if p := sigMask(t, pid, "ShdPnd"); !inMask(p, first) || !inMask(p, syscall.SIGTERM) {
		t.Fatalf("pending signals %#x: want %v and %v", p, first, syscall.SIGTERM)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want 1; stderr: %s", err, stderr.String())
	}
	pw.Close()
	left, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	committed := committedInput(t, dir)
	in := bytes.Repeat([]byte{'\n'}, int(fed))
	if !bytes.HasPrefix(in, committed.Bytes()) {
		t.Fatalf("the log is not a prefix of the input: %d bytes committed", committed.Len())
	}
	dropped := len(in) - committed.Len() - len(left)
	if dropped <= 0 {
		t.Fatalf("nothing read was left uncommitted (%d fed, %d committed, %d in the pipe); stderr: %s",
			len(in), committed.Len(), len(left), stderr.String())
	}
	// The first signal was taken as one: the second came after it.
	if !strings.Contains(stderr.String(), "interrupted: committing the input already read; interrupt again to stop now\n") {
		t.Fatalf("stderr %q does not acknowledge the first signal", stderr.String())
	}
	want := fmt.Sprintf("interrupted twice: input committed up to offset %d; %d bytes read after it were not committed", committed.Len(), dropped)
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q does not say %q", stderr.String(), want)
	}
	// Once: the exit error used to say it again in other words ("N bytes
	// read from stdin were not committed").
	if n := strings.Count(stderr.String(), fmt.Sprintf("%d bytes", dropped)); n != 1 {
		t.Fatalf("stderr %q gives the %d bytes not committed %d times, want once", stderr.String(), dropped, n)
	}
}

// startSlowWrite starts `write --sync always` (every record waits for the
// disk, so input queues up behind the appends) on a pipe whose read end
// the test keeps too, to see what was left in it.
func startSlowWrite(t *testing.T) (dir string, cmd *exec.Cmd, pr, pw *os.File, stderr *lockedBuffer) {
	t.Helper()
	bin := buildBinary(t)
	dir = t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	cmd = exec.Command(bin, "write", "--sync", "always", dir)
	cmd.Stdin = pr
	stderr = &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return dir, cmd, pr, pw, stderr
}

// lockedBuffer is a child's stderr read while the child runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// committedInput is the input the log's records were made from, one per
// line.
// waitForRecord waits until the log at dir holds a committed record.
func waitForRecord(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		r, err := reader.Open(dir, reader.Options{Start: reader.Skip(0)})
		if err != nil {
			continue // not created yet
		}
		ok := r.Next()
		r.Close()
		if ok {
			return
		}
	}
	t.Fatalf("no record committed in %s within a minute", dir)
}

func committedInput(t *testing.T, dir string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	for _, p := range payloads(t, dir) {
		b.Write(p)
		b.WriteByte('\n')
	}
	return &b
}

// TestWriteWithStderrClosed: a reader of stderr that went away (`write
// DIR 2>&1 | head`, a log collector restarted) does not end `write`.
// SIGPIPE, left to its default, killed it at its first line on stderr:
// the signal's notice, losing the blocks read and not committed and
// leaving the segment unsealed, or the closing summary, exit 141 after a
// run that committed everything (found by a hostile-user review).
func TestWriteWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	for _, signalled := range []bool{true, false} {
		dir := t.TempDir()
		ew := closedPipe(t)
		in, inw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "write", "--sync", "always", dir)
		cmd.Stdin, cmd.Stderr = in, ew
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		in.Close()
		ew.Close()
		var fed bytes.Buffer
		for i := range 300 {
			fmt.Fprintf(&fed, "record %04d\n", i)
		}
		if _, err := inw.Write(fed.Bytes()); err != nil {
			t.Fatal(err)
		}
		if signalled {
			waitForRecord(t, dir)
			cmd.Process.Signal(syscall.SIGTERM)
		} else {
			inw.Close()
		}
		err = cmd.Wait()
		inw.Close()
		committed := committedInput(t, dir)
		rep, verr := verify.Paths([]string{dir}, verify.Options{})
		if err != nil || verr != nil || rep.ExitCode(true) != verify.ExitClean || !bytes.HasPrefix(fed.Bytes(), committed.Bytes()) ||
			(!signalled && committed.Len() != fed.Len()) {
			t.Fatalf("signalled %v: exit %v, verify %v; %d of %d bytes committed", signalled, err, verr, committed.Len(), fed.Len())
		}
	}
}

// TestWriteUnderNohup: a SIGHUP ignored when write started (nohup, a
// background job of a shell without job control) stays ignored. Notify
// installs a handler even for an ignored SIGHUP: write took the hangup of
// the session nohup was meant to outlive as a stop, exit 0, and the input
// after it never reached the log (found by a review).
func TestWriteUnderNohup(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	in, inw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inw.Close()
	stderr := &lockedBuffer{}
	cmd := exec.Command(nohupBin(t, bin), "write", dir)
	cmd.Stdin, cmd.Stderr = in, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if _, err := inw.WriteString("before the hangup\n"); err != nil {
		t.Fatal(err)
	}
	waitForRecord(t, dir) // past the command's signal set-up
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, err := inw.WriteString("after the hangup\n"); err != nil {
		t.Fatalf("write stopped reading at an ignored SIGHUP: %v; stderr: %s", err, stderr.String())
	}
	inw.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if got := committedInput(t, dir).String(); got != "before the hangup\nafter the hangup\n" || strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("committed %q; stderr: %s", got, stderr.String())
	}
}

// nohupBin is a script that runs bin with SIGHUP ignored, as nohup does:
// the shell's trap leaves it ignored across the exec.
func nohupBin(t *testing.T, bin string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nohup-auditseg")
	if err := os.WriteFile(p, []byte("#!/bin/sh\ntrap '' HUP\nexec '"+bin+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWriteGivesSIGPIPEBack: write run in-process (as here, or by a
// program embedding the command) leaves SIGPIPE as it found it. It
// ignored SIGPIPE and "reset" it with signal.Reset, which the runtime
// does not undo for SIGPIPE: the process kept ignoring it, a later write
// to a stdout whose reader had gone failing with EPIPE where the Go
// default ends the program (found by a review).
func TestWriteGivesSIGPIPEBack(t *testing.T) {
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", filepath.Join(t.TempDir(), "log")); code != exitOK {
		t.Fatalf("write: exit %d: %s", code, stderr)
	}
	if signal.Ignored(syscall.SIGPIPE) {
		t.Fatal("SIGPIPE is still ignored after write returned")
	}
}

// TestErrorWithStderrClosed: the exit code of a failed command stays the
// documented one when its reader of stderr went away: write's Open
// failure is 2, not a death by SIGPIPE as the error is printed.
func TestErrorWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "write", filepath.Join(blocker, "log"))
	cmd.Stderr = closedPipe(t)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("write into a path under a file, stderr closed: %v; want exit %d", err, exitUsage)
	}
}
