package writer_test

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// waitSealed waits up to 10 s for the segment file at path to be sealed.
func waitSealed(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := segment.ReadFooter(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not sealed after 10 s", path)
		}
	}
}

// sealedUnderSyncNone opens a SyncNone writer with opts (64 KiB segments)
// on a new log, appends until segment 3 and waits for segment 1 to be
// sealed: sealed without a flush, it is fsynced by name by the next Sync.
// The writer is closed when the test ends.
func sealedUnderSyncNone(t *testing.T, opts writer.Options) (w *writer.Writer, dir, seg1 string) {
	t.Helper()
	dir = t.TempDir()
	opts.SegmentSize, opts.Sync = 64<<10, writer.SyncNone
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	appendUntil(t, w, 3)
	seg1 = filepath.Join(dir, segment.FileName(1))
	waitSealed(t, seg1)
	return w, dir, seg1
}

// TestSyncWithSealedSegmentReplaced: under SyncNone, Sync fsyncs the
// segments sealed since the last Sync by name. A name that holds a FIFO
// by then blocked that open (O_RDONLY without O_NONBLOCK) until something
// wrote to the FIFO: Sync and Close hung for good. A link, a directory or
// a socket there must neither hang Sync nor fail the writer: the sealed
// file is gone from the log as if removed, which the log reports.
func TestSyncWithSealedSegmentReplaced(t *testing.T) {
	kinds := map[string]func(path, moved string) error{
		"fifo":    func(path, _ string) error { return syscall.Mkfifo(path, 0o600) },
		"symlink": func(path, moved string) error { return os.Symlink(moved, path) },
		"dir":     func(path, _ string) error { return os.Mkdir(path, 0o700) },
		"socket": func(path, _ string) error {
			l, err := net.Listen("unix", path)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		},
	}
	for name, replace := range kinds {
		t.Run(name, func(t *testing.T) {
			logs := &logCapture{}
			w, _, path := sealedUnderSyncNone(t, writer.Options{Logger: slog.New(logs)})
			moved := filepath.Join(t.TempDir(), "moved.seg")
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if err := replace(path, moved); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- w.Sync() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
			case <-time.After(10 * time.Second):
				// Unblock the FIFO's open so the goroutine can end.
				if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatal("Sync did not return within 10 s")
			}
			if !logs.contains(path) || !logs.contains("not a regular file") {
				t.Errorf("no warning naming %s as not a regular file: %s", path, logs)
			}
			if _, err := w.Append([]byte("after")); err != nil {
				t.Fatalf("Append after the Sync: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}
