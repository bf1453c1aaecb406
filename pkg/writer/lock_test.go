package writer_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A LOCK file removed under a running writer lets no second writer in
// (found by a hostile-environment review: the second writer recovered the
// first one's active segment, records of both were lost and the first
// crashed); the first one goes on, puts a new LOCK file in place, and
// every record of it is read back.
func TestLockFileRemovedUnderWriter(t *testing.T) {
	dir := t.TempDir()
	logs := &logCapture{}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[segment.Position][]byte{}
	appendN := func(from, n int) {
		for i := from; i < from+n; i++ {
			p := faultPayload(i)
			pos, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			acked[pos] = p
		}
	}
	appendN(0, 300)
	if err := os.Remove(filepath.Join(dir, segment.LockName)); err != nil {
		t.Fatal(err)
	}
	if w2, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10}); !errors.Is(err, segment.ErrLocked) {
		if err == nil {
			w2.Close()
		}
		t.Fatalf("second writer with the LOCK file removed: %v", err)
	}
	appendN(300, 1000) // rotations: each creation checks the lock
	if _, err := os.Stat(filepath.Join(dir, segment.LockName)); err != nil || !logs.contains("LOCK file") {
		t.Fatalf("LOCK file not put back (%v), or not logged", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, dir, acked)
}

// A log directory moved away from its path under a running writer fails
// the writer (sticky, naming the directory) instead of letting it create
// segments in whatever directory now has that path.
func TestLogDirectoryMovedUnderWriter(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "log")
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Logger: slog.New(&logCapture{})})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var aerr error
	for i := 0; aerr == nil && time.Now().Before(deadline); i++ {
		_, aerr = w.Append(faultPayload(i))
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !errors.Is(aerr, segment.ErrLockLost) || !errors.Is(aerr, writer.ErrFailed) {
		t.Fatalf("append after the directory moved: %v", aerr)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("the writer created %v in the new directory at its path", fmt.Sprint(names))
	}
}

// Writers started again and again beside a running one whose LOCK file was
// removed are all refused, and the running one never fails for it (found
// by a review: Check met the new LOCK file held by a starting writer and
// failed the running writer, after 289 appends).
func TestRefusedWritersLeaveTheRunningOne(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Logger: slog.New(&logCapture{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, segment.LockName)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	starts := make(chan error, 1)
	go func() {
		var bad error
		for n := 0; ; n++ {
			select {
			case <-stop:
				starts <- bad
				return
			default:
			}
			w2, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
			if err == nil {
				w2.Close()
				bad = fmt.Errorf("start %d: a second writer opened the log", n)
			} else if !errors.Is(err, segment.ErrLocked) && bad == nil {
				bad = fmt.Errorf("start %d: %w", n, err)
			}
		}
	}()
	for i := range 3000 { // about 25 rotations, each checking the lock
		if _, err := w.Append(faultPayload(i)); err != nil {
			close(stop)
			<-starts
			t.Fatalf("append %d: %v", i, err)
		}
	}
	close(stop)
	if err := <-starts; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A writer whose log directory was moved away, and a new log started at
// its path, must not remove the new log's files when it closes: it removed
// the segments numbered like its unused next and created-ahead ones, by
// path, one of them holding the new writer's acknowledged records (found
// by a review).
func TestCloseAfterMoveLeavesTheNewLog(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "log")
	w1, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(dir, segment.FileName(2))) // prepared at Open
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	w2, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := w2.Append(faultPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	if err := w1.Close(); !errors.Is(err, segment.ErrLockLost) {
		t.Errorf("Close of the moved writer: %v, want ErrLockLost", err)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Fatalf("the new log held %d files before the old writer closed, %d after", len(before), len(after))
	}
}
