package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testlog"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestCompressWithStderrClosed: a reader of stderr that went away
// (`compress-finished DIR 2>&1 | head`, a log collector restarted) does
// not end compress-finished. SIGPIPE, left to its default, killed it at
// its next line on stderr, between two steps of a segment's protocol,
// exit 141 for a run that would have archived everything (found by a
// hostile-user review; a clean run says nothing on stderr, so a damaged
// segment, whose warning does, is in the log). It runs to the end and
// exits 0, the damaged segment left as it was.
func TestCompressWithStderrClosed(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	rec := make([]byte, 1000)
	testlog.Write(t, dir, writer.Options{SegmentSize: segment.MinSegmentSize}, 600, // ~10 segments of 64 KiB
		func(int) []byte { return rec })
	damaged := filepath.Join(dir, segment.FileName(2))
	// Inverted, not set to 0xff: the byte is one of segment 1's digest,
	// in the previous-digest field, which is 0xff once in 256 runs.
	if err := flipByte(damaged, segment.MinSegmentSize-60); err != nil { // in its footer
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "compress-finished", dir)
	cmd.Stderr = closedPipe(t)
	if err := cmd.Run(); err != nil {
		t.Fatalf("compress-finished, stderr closed: %v; want exit 0", err)
	}
	archives, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst"))
	if len(archives) < 5 {
		t.Fatalf("%d archives after the run", len(archives))
	}
	if _, err := os.Stat(damaged); err != nil {
		t.Fatalf("the damaged segment: %v", err)
	}
	rep, err := verify.Paths([]string{dir}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Path != damaged {
			t.Errorf("verify after the run: %+v (only %s is damaged)", f, damaged)
		}
	}
}
