package writer_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestRecoveryDirFsyncNamesTheDirOnce: recovery's directory fsync failing
// with the operating system's error read "open DIR: fsync directory DIR:
// sync DIR: input/output error".
func TestRecoveryDirFsyncNamesTheDirOnce(t *testing.T) {
	dir := t.TempDir()
	fs := &crashtest.FaultFS{}
	fs.Inject(crashtest.Fault{Op: crashtest.OpSyncDir, N: 1, Path: dir, Err: &os.PathError{Op: "sync", Path: dir, Err: syscall.EIO}})
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		w.Close()
		t.Fatal("Open succeeded with its directory fsync failing")
	}
	if want := dir + ": fsync the directory: input/output error"; err.Error() != want || !errors.Is(err, syscall.EIO) {
		t.Errorf("Open:\n got %q\nwant %q", err, want)
	}
}

// TestSyncOpenErrorNamesTheSegmentOnce: under SyncNone, an open of a
// sealed segment to flush it that fails read "open PATH to flush it:
// open PATH: input/output error".
func TestSyncOpenErrorNamesTheSegmentOnce(t *testing.T) {
	dir := t.TempDir()
	fs := &crashtest.FaultFS{}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendUntil(t, w, 3)
	path := filepath.Join(dir, segment.FileName(1))
	waitSealed(t, path)
	fs.Inject(crashtest.Fault{Op: crashtest.OpOpen, N: 1, Path: path})
	err = w.Sync()
	if want := "open to flush " + path + ": input/output error"; err == nil || !strings.HasSuffix(err.Error(), want) || strings.Count(err.Error(), path) != 1 {
		t.Errorf("Sync: %v; want it to end %q, naming the segment once", err, want)
	}
}
