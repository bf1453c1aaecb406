package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	// Hundreds of 64 KiB segments, archived one at a time: nothing in the
	// run waits for the test (it reads no input), so the time it takes is
	// the margin the signals below have to land in (~1 s on an idle
	// ext4, ~0.2 s on tmpfs; a loaded machine slows the run too).
	dir, _ := compressLog(t, 300000)
	script := filepath.Join(t.TempDir(), "bg-auditseg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntrap '' INT\nexec '"+bin+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	cmd := exec.Command(script, "compress-finished", "--jobs", "1", dir)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	archives := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst"))
		return len(m)
	}
	// SIGINT once the first archive is in place (the run is past its
	// signal set-up) and again every millisecond, until one was sent with
	// two segments or more still to archive after it: one may be under
	// way, and a run that finishes it without asking the context again
	// would not say "interrupted" even with the bug.
	var err error
	for caught := false; !caught; {
		select {
		case err = <-done:
			t.Fatalf("the run ended before a SIGINT was sent with segments left to archive (%d of %d archived in %v; exit %v): this machine stalled the test for the whole run; stderr: %s",
				archives(), len(before.Segments)-1, time.Since(start).Round(time.Millisecond), err, stderr.String())
		case <-time.After(time.Millisecond):
		}
		if archives() == 0 {
			if time.Since(start) > time.Minute {
				t.Fatalf("no archive after a minute: %s", stderr.String())
			}
			continue
		}
		if cmd.Process.Signal(syscall.SIGINT) == nil && archives() <= len(before.Segments)-3 {
			caught = true
		}
	}
	if err = <-done; err != nil || strings.Contains(stderr.String(), "interrupted") {
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
