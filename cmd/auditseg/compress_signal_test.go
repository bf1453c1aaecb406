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
	dir, _ := compressLog(t, 40000) // dozens of 64 KiB segments
	script := filepath.Join(t.TempDir(), "bg-auditseg")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntrap '' INT\nexec '"+bin+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	cmd := exec.Command(script, "compress-finished", "--jobs", "1", dir)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The first archive in place: the run is past its signal set-up, with
	// segments left to do.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no archive after 30s: %s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("the run ended before the signal (%v): the log is too small to catch it running", err)
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
