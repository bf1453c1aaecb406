package writer

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// gateFS holds the fsync of one file until the test sends its result.
type gateFS struct {
	osFS
	path    string
	entered chan struct{}
	result  chan error
}

func (g *gateFS) Fsync(f *os.File) error {
	if f.Name() == g.path {
		close(g.entered)
		return <-g.result
	}
	return g.osFS.Fsync(f)
}

// TestCloseSeesInheritedFsyncFailureOfSync: a Sync and a Close both
// fsync the sealed segments recovery inherited, whichever comes first
// taking the list. When the Sync's fsync failed, the Close that found the
// list empty returned nil if it looked before the Sync recorded the
// failure (the Sync's caller got the error; Close said all was durable).
// The failure is now recorded before the list's lock is released. The
// Sync is held after its fsync, before it records the failure itself,
// by holding the syncer's lock.
func TestCloseSeesInheritedFsyncFailureOfSync(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10, Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		p, err := w.Append(make([]byte, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq >= 2 {
			break
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	g := &gateFS{path: filepath.Join(dir, segment.FileName(1)), entered: make(chan struct{}), result: make(chan error)}
	w, err = Open(dir, Options{SegmentSize: 64 << 10, Sync: SyncInterval, SyncInterval: 1 << 40, FS: g})
	if err != nil {
		t.Fatal(err)
	}
	syncErr, closeErr := closeWhileSyncFails(w, g.entered, g.result)
	if err := syncErr; !errors.Is(err, syscall.EIO) {
		t.Errorf("Sync: %v, want the fsync's EIO", err)
	}
	if !errors.Is(closeErr, ErrFailed) || !errors.Is(closeErr, syscall.EIO) {
		t.Errorf("Close: %v; want the failed fsync of %s that a concurrent Sync met", closeErr, g.path)
	}
}

// msyncGateFS holds the first msync until the test sends its result.
type msyncGateFS struct {
	osFS
	once    sync.Once
	entered chan struct{}
	result  chan error
}

func (g *msyncGateFS) Msync(b []byte) error {
	gated := false
	g.once.Do(func() { gated = true })
	if gated {
		close(g.entered)
		return <-g.result
	}
	return g.osFS.Msync(b)
}

// TestCloseSeesMsyncFailureOfSync (review): a Sync's msync of the active
// segment that fails has reported the error on the segment's file, whose
// next fsync succeeds; the sealer, which takes the mapping's lock once
// the flush lets it go, then sealed that segment for Close, and Close
// returned nil if it ended before the Sync recorded the failure (the
// Sync's caller got EIO, Close said all was durable), as 66cec8f fixed
// for the inherited segments. The failure is now recorded before the
// mapping's lock is released. The Sync is held after its msync, before it
// records the failure itself, by holding the syncer's lock.
func TestCloseSeesMsyncFailureOfSync(t *testing.T) {
	g := &msyncGateFS{entered: make(chan struct{}), result: make(chan error)}
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, Sync: SyncInterval, SyncInterval: 1 << 40, FS: g})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	syncErr, closeErr := closeWhileSyncFails(w, g.entered, g.result)
	if err := syncErr; !errors.Is(err, syscall.EIO) {
		t.Errorf("Sync: %v, want the msync's EIO", err)
	}
	if !errors.Is(closeErr, syscall.EIO) {
		t.Errorf("Close: %v, want the msync's EIO, which Sync reported", closeErr)
	}
}

// closeWhileSyncFails runs a Sync, lets the gated call it makes (entered)
// fail with EIO (result), and closes w while the Sync waits for the
// syncer's lock, before it records the failure itself; it returns what
// the Sync and the Close returned.
func closeWhileSyncFails(w *Writer, entered chan struct{}, result chan error) (syncErr, closeErr error) {
	done := make(chan error, 1)
	go func() { done <- w.Sync() }()
	<-entered
	w.syncer.mu.Lock()
	result <- syscall.EIO
	closeErr = w.Close()
	w.syncer.mu.Unlock()
	return <-done, closeErr
}
