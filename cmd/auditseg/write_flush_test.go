package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// flushesOfWrite runs what `auditseg write --sync MODE` does once its log
// is open (appendInput) on n records, several segments of them, with the
// log's file operations seen through a crashtest.FaultFS, and returns
// the flushes of records it saw: every msync, and every fsync but that of
// a new segment's header (under its temporary name), which every mode
// makes before a record goes in.
func flushesOfWrite(t *testing.T, mode string, n int) []string {
	t.Helper()
	dir := t.TempDir()
	f := writeFlags{segmentSize: "64KiB", sync: mode, syncInterval: time.Second, delim: "newline", quiet: true}
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var flushes []string
	opts.FS = &crashtest.FaultFS{After: func(c crashtest.Call) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.Op == crashtest.OpMsync:
			flushes = append(flushes, "msync")
		case c.Op == crashtest.OpFsync && !strings.HasSuffix(c.Path, segment.TempExt):
			flushes = append(flushes, "fsync "+c.Path)
		}
	}}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	maxRec := segment.DefaultMaxRecord(opts.SegmentSize)
	split, err := newSplitter(f, maxRec, opts.SegmentSize)
	if err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "record %06d %s\n", i, strings.Repeat("x", i%97))
	}
	cmd := newWriteCmd()
	cmd.SetIn(&in)
	var errb bytes.Buffer
	cmd.SetErr(&errb)
	if err := appendInput(cmd, w, opts, f, split, maxRec, make(chan os.Signal)); err != nil {
		t.Fatalf("write --sync %s: %v\n%s", mode, err, errb.String())
	}
	if got := len(payloads(t, dir)); got != n {
		t.Fatalf("write --sync %s: %d records in the log, want %d", mode, got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	return flushes
}

// TestWriteSyncNoneNeverFlushes holds README's Durability table: under
// `--sync none` `auditseg write` never makes a Sync (nor does its Close):
// no record is flushed, across rotations and the close. Under `always`
// the same watch sees the flushes, so it is no blind spot.
func TestWriteSyncNoneNeverFlushes(t *testing.T) {
	const n = 5000 // ~350 KiB: six segments of 64 KiB
	if got := flushesOfWrite(t, "none", n); len(got) != 0 {
		t.Errorf("write --sync none flushed records %d times: %v", len(got), got[:min(len(got), 5)])
	}
	if got := flushesOfWrite(t, "always", 50); len(got) < 50 {
		t.Errorf("write --sync always: %d flushes seen for 50 records; want one each at least", len(got))
	}
}
