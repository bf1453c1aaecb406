package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCompressFinishedUnderIgnoredInterrupt: a compress-finished started
// with SIGINT ignored (a background job of a script: the shell ignores
// SIGINT for it) keeps ignoring it and finishes. signal.Notify installs a
// handler even for a signal ignored at start; compress-finished asked for
// SIGINT, so such a run stopped half done (exit 1, "interrupted") at an
// interrupt meant for the foreground (found by a review of write's and
// tail's; stopSignals).
func TestCompressFinishedUnderIgnoredInterrupt(t *testing.T) {
	bin := buildBinary(t)
	// A few segments: the run is stopped at a known point below, not
	// raced.
	dir, _ := compressLog(t, 4000)
	before := listing(t, dir)
	if len(before.Segments) < 4 {
		t.Fatalf("only %d segments", len(before.Segments))
	}
	run := startStoppedInPlan(t, bin, dir, before.Segments[len(before.Segments)-1].Path, "trap '' INT")
	cmd, pid, stderr, done, release := run.cmd, run.pid, run.stderr, run.done, run.release
	// The cause, seen directly: SIGINT is still ignored, no handler was
	// installed for it.
	if ign, cgt := sigMask(t, pid, "SigIgn"), sigMask(t, pid, "SigCgt"); !inMask(ign, syscall.SIGINT) || inMask(cgt, syscall.SIGINT) {
		t.Fatalf("SIGINT mid-run: ignored %v, caught %v; want ignored", inMask(ign, syscall.SIGINT), inMask(cgt, syscall.SIGINT))
	}
	// The effect: an interrupt mid-run, with every segment left to
	// archive after it. Sent while the command is stopped, it is taken
	// (by a handler, with the bug) as the command resumes, before the
	// plan goes on.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	release()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	after := listing(t, dir)
	archived := 0
	for _, e := range after.Segments {
		if e.Archived {
			archived++
		}
	}
	if archived != len(before.Segments)-1 || len(after.Segments) != len(before.Segments) {
		t.Fatalf("%d of %d segments archived (%d listed); want all but the newest", archived, len(before.Segments), len(after.Segments))
	}
}

// TestCompressFinishedInterruptedExitsOne: README, compress-finished's
// exit codes: a run interrupted by SIGINT, SIGTERM or SIGHUP exits 1,
// saying so, and leaves the segments in hand as they were (not counted
// as failed): every segment is still there, as its original or its
// archive, and no temporary file is left.
func TestCompressFinishedInterruptedExitsOne(t *testing.T) {
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			// A log of its own: the run before may have archived
			// segments before its signal stopped it (allowed), which
			// startStoppedInPlan would take for this run's archiving.
			dir, _ := compressLog(t, 4000)
			before := listing(t, dir)
			if len(before.Segments) < 4 {
				t.Fatalf("only %d segments", len(before.Segments))
			}
			run := startStoppedInPlan(t, bin, dir, before.Segments[len(before.Segments)-1].Path, ":")
			// Taken as the command resumes, in the middle of its plan.
			if err := run.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			run.release()
			if err := syscall.Kill(run.pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			err := <-run.done
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitFailure || !strings.Contains(run.stderr.String(), "interrupted") {
				t.Fatalf("exit %v, stderr %q; want exit %d, saying interrupted", err, run.stderr.String(), exitFailure)
			}
			if strings.Contains(run.stderr.String(), "failed") {
				t.Errorf("stderr %q: a segment in hand counted as failed", run.stderr.String())
			}
			after := listing(t, dir)
			if len(after.Segments) != len(before.Segments) {
				t.Errorf("%d segments after the interrupted run, %d before", len(after.Segments), len(before.Segments))
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
				t.Errorf("temporary files left: %q", m)
			}
		})
	}
}

// stoppedRun is a compress-finished run held stopped (SIGSTOP) inside its
// plan: past its signal set-up, with every segment still to archive.
type stoppedRun struct {
	cmd     *exec.Cmd
	pid     int
	stderr  *lockedBuffer
	done    chan error
	release func() // gives the lease up; SIGCONT then lets the run go on
}

// startStoppedInPlan starts compress-finished on dir through a script
// that runs prelude first, and stops it in its plan's open of newest.
func startStoppedInPlan(t *testing.T, bin, dir, newest, prelude string) *stoppedRun {
	t.Helper()
	// The script stops itself before it runs the command, so that the
	// lease below can name its process.
	script := filepath.Join(t.TempDir(), "bg-auditseg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+prelude+"\nkill -STOP $$\nexec '"+bin+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "compress-finished", "--jobs", "1", dir)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// A failed test leaves no stopped child behind (Kill is a no-op once
	// it was waited for).
	t.Cleanup(func() { cmd.Process.Kill() })
	pid := cmd.Process.Pid
	waitStopped(t, pid)
	// The run's plan opens the newest segment first (to tell whether it
	// is sealed), before it archives any: a lease on it makes that open
	// send the command SIGSTOP. It is then inside archive.Run, past its
	// signal set-up, with every segment still to archive. (The open waits
	// for the lease, segment.OpenNoFollow; the newest segment is not
	// sealed, so it is never archived.)
	release := leaseStopping(t, newest, pid)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); procState(t, pid) != 'T'; time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) without opening %s: %s", err, newest, stderr.String())
		default:
		}
		if time.Now().After(deadline) { // a hang, not a measurement
			t.Fatalf("the run did not open %s within a minute", newest)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst*")); len(m) != 0 {
		t.Fatalf("archiving began before the plan was done: %q", m)
	}
	return &stoppedRun{cmd: cmd, pid: pid, stderr: stderr, done: done, release: release}
}

// leaseStopping takes a write lease (fcntl F_SETLEASE) on path whose
// break, when another process opens the file, sends process pid SIGSTOP:
// the kernel signals the lease's owner, and F_SETOWN and F_SETSIG make
// that pid and that signal. pid stops in its open, before it runs another
// instruction. release gives the lease up.
func leaseStopping(t *testing.T, path string, pid int) (release func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fd := f.Fd()
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK); err != nil {
			t.Errorf("release the lease on %s: %v", path, err)
		}
		f.Close()
	}
	t.Cleanup(release)
	if _, err := unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("no file leases on the file system of %s: %v", path, err)
		}
		t.Fatalf("lease %s: %v", path, err)
	}
	for _, c := range [][2]int{{unix.F_SETOWN, pid}, {unix.F_SETSIG, int(syscall.SIGSTOP)}} {
		if _, err := unix.FcntlInt(fd, c[0], c[1]); err != nil {
			t.Fatalf("lease %s: fcntl %d: %v", path, c[0], err)
		}
	}
	return release
}
