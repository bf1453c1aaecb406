package writer_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Under SyncNone a sealed segment is written back (sync_file_range,
// waiting) before its memory is reused. That writeback failing consumes
// the error: a Sync that opened the file afterwards would fsync it
// without seeing it. So the failure is sticky, naming the file and the
// range, and a Sync that runs while the writeback is failing returns it
// instead of reporting the segment's records durable.
func TestWritebackFailureUnderSyncNone(t *testing.T) {
	fs := &crashtest.FaultFS{}
	fs.Inject(crashtest.Fault{Op: crashtest.OpSyncRange, N: 1})
	inWB, release := make(chan struct{}), make(chan struct{})
	fs.Before = func(c crashtest.Call) {
		if c.Op == crashtest.OpSyncRange && c.N == 1 {
			close(inWB)
			<-release
		}
	}
	dir := t.TempDir()
	const size = 64 << 10
	w, err := writer.Open(dir, writer.Options{SegmentSize: size, Sync: writer.SyncNone, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendUntil(t, w, 2) // segment 1 is sealed and goes to the writeback
	select {
	case <-inWB:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("segment 1 was not written back within 10 s of its rotation")
	}
	synced := make(chan error, 1)
	go func() { synced <- w.Sync() }()
	// A Sync that does not wait for the writeback returns meanwhile (nil:
	// its own descriptor's fsync sees no error), which the check below
	// catches; one that waits returns only after release, whatever this
	// wait.
	var serr error
	returned := false
	select {
	case serr = <-synced:
		returned = true
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if !returned {
		serr = <-synced
	}
	path := filepath.Join(dir, segment.FileName(1))
	want := fmt.Sprintf("%v: write back sealed %s [0, %d): %v", writer.ErrFailed, path, size, syscall.EIO)
	if serr == nil || serr.Error() != want {
		t.Fatalf("Sync while the writeback of %s failed: %v (before the writeback returned: %v); want %q", path, serr, returned, want)
	}
	if !errors.Is(serr, writer.ErrFailed) || !errors.Is(serr, syscall.EIO) {
		t.Fatalf("Sync: %v, want ErrFailed wrapping EIO", serr)
	}
	if _, err := w.Append([]byte("after")); err == nil || err.Error() != want {
		t.Fatalf("Append after the failed writeback: %v, want %q", err, want)
	}
	if err := w.Sync(); err == nil || err.Error() != want {
		t.Fatalf("a later Sync: %v, want %q", err, want)
	}
	if err := w.Close(); err == nil || err.Error() != want {
		t.Fatalf("Close: %v, want %q", err, want)
	}
}
