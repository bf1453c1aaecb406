package writer_test

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// rangeCalls records the files of the calls of op a FaultFS makes.
type rangeCalls struct {
	mu    sync.Mutex
	paths []string
}

func recordCalls(fs *crashtest.FaultFS, op crashtest.Op) *rangeCalls {
	rc := &rangeCalls{}
	fs.After = func(c crashtest.Call) {
		if c.Op == op {
			rc.mu.Lock()
			rc.paths = append(rc.paths, c.Path)
			rc.mu.Unlock()
		}
	}
	return rc
}

func (rc *rangeCalls) has(path string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Contains(rc.paths, path)
}

// Open continues in a segment an earlier writer prepared and never used,
// giving its page cache back first (remapUnused): the writeback of its
// header's page goes through the FS's RangeSyncer, as every other
// sync_file_range of a segment does, so an FS that instruments or fails
// the writer's I/O sees it.
func TestUnusedSegmentWritebackThroughFS(t *testing.T) {
	dir := t.TempDir()
	opts := writer.Options{SegmentSize: 1 << 20, Sync: writer.SyncAlways}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // nothing appended: the next Open continues in 1.seg
		t.Fatal(err)
	}
	fs := &crashtest.FaultFS{}
	rc := recordCalls(fs, crashtest.OpSyncRange)
	opts.FS = fs
	if w, err = writer.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if pos, err := w.Append([]byte("continues in 1")); err != nil || pos.Seq != 1 {
		t.Fatalf("Append: %v at %v, want segment 1", err, pos)
	}
	if path := filepath.Join(dir, segment.FileName(1)); !rc.has(path) {
		t.Errorf("no SyncRange of %s through the FS (calls: %q)", path, rc.paths)
	}
}

// The write-ahead (SyncInterval, SyncAlways) starts the writeback of the
// active segment's filled part while it fills: through the FS's
// RangeStarter, so that an FS that instruments or fails the writer's I/O
// sees it.
func TestWriteAheadThroughFS(t *testing.T) {
	fs := &crashtest.FaultFS{}
	started := make(chan struct{})
	var once sync.Once
	dir := t.TempDir()
	path := filepath.Join(dir, segment.FileName(1))
	fs.After = func(c crashtest.Call) {
		if c.Op == crashtest.OpStartRange && c.Path == path {
			once.Do(func() { close(started) })
		}
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 16 << 20, Sync: writer.SyncInterval, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The write-ahead starts once 8 MiB in whole 2 MiB stretches are filled.
	p := make([]byte, 64<<10)
	for pos := (segment.Position{}); pos.Offset < 11<<20; {
		if pos, err = w.Append(p); err != nil || pos.Seq != 1 {
			t.Fatalf("Append: %v at %v, want segment 1", err, pos)
		}
	}
	select {
	case <-started:
	case <-time.After(time.Minute): // a failure guard only: it runs every 10 ms
		t.Fatalf("no StartRange of %s through the FS within a minute", path)
	}
}

// wrapFS overrides nothing of the FS it embeds, as a wrapper that
// instruments a few calls would; embedded as an interface, it has none of
// that FS's optional methods, and says where they are by Unwrap.
type wrapFS struct{ writer.FS }

func (w wrapFS) Unwrap() writer.FS { return w.FS }

// A wrapper FS that embeds another as an interface loses the inner one's
// optional interfaces (Go promotes only FS's methods); with Unwrap the
// writer finds them in the FS it wraps, through wrappers of wrappers,
// instead of falling back to the system calls past the user's FS.
func TestOptionalInterfacesThroughUnwrap(t *testing.T) {
	dir := t.TempDir()
	fs := &crashtest.FaultFS{}
	opts := writer.Options{SegmentSize: 1 << 20, Sync: writer.SyncAlways, FS: wrapFS{wrapFS{fs}}}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.Calls(crashtest.OpWrite); n == 0 {
		t.Error("the new segment's header was not written through the wrapped FS's WriteAt")
	}
	fs = &crashtest.FaultFS{}
	opts.FS = wrapFS{fs}
	if w, err = writer.Open(dir, opts); err != nil { // continues in the unused 1.seg
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.Calls(crashtest.OpSyncRange); n == 0 {
		t.Error("the unused segment's writeback at Open did not go through the wrapped FS's SyncRange")
	}
}

// loopFS's Unwrap returns itself: a cycle a careless wrapper makes.
type loopFS struct{ writer.FS }

func (l *loopFS) Unwrap() writer.FS { return l }

// An Unwrap chain that cycles costs the optional interfaces past it, not
// a hang in Open (errors.Is has no such guard; the writer's lookup does).
func TestOptionalInterfacesUnwrapCycle(t *testing.T) {
	err := testfs.WithinAMinute(t, "Open with an FS whose Unwrap returns itself did not return in a minute", func() error {
		w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 1 << 20, FS: &loopFS{&crashtest.FaultFS{}}})
		if err == nil {
			_, err = w.Append([]byte("x"))
			err = errors.Join(err, w.Close())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
