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
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestSyncLooksAtReplacedSegmentThroughFS: under SyncNone, Sync looks at
// the name of a sealed segment it cannot open (here a symbolic link) to
// tell what it holds. That Lstat went to the operating system past
// Options.FS, where no fault could reach it; through the FS, its failure
// fails Sync with the open's error and its own, naming the file once: a
// name whose content nothing could tell must not pass as replaced.
func TestSyncLooksAtReplacedSegmentThroughFS(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "lstat works", true: "lstat fails"}[fail]
		t.Run(name, func(t *testing.T) {
			fs := &crashtest.FaultFS{}
			logs := &logCapture{}
			w, _, path := sealedUnderSyncNone(t, writer.Options{FS: fs, Logger: slog.New(logs)})
			moved := filepath.Join(t.TempDir(), "moved.seg")
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, path); err != nil {
				t.Fatal(err)
			}
			if fail {
				fs.Inject(crashtest.Fault{Op: crashtest.OpLstat, N: 1, Path: path})
			}
			err := w.Sync()
			if n := fs.Calls(crashtest.OpLstat); n != 1 {
				t.Errorf("%d Lstat calls through the FS; want 1, for the link", n)
			}
			if !fail {
				if err != nil || !logs.contains(path) {
					t.Fatalf("Sync: %v; want nil and the link logged (%s)", err, logs)
				}
				return
			}
			if err == nil {
				t.Fatal("Sync succeeded although nothing could tell what the sealed segment's name holds")
			}
			msg := err.Error()
			if !errors.Is(err, syscall.EIO) || !errors.Is(err, syscall.ELOOP) || strings.Count(msg, path) != 1 || !strings.Contains(msg, "lstat") {
				t.Errorf("Sync: %q; want the open's ELOOP and the lstat's EIO, naming %s once", msg, path)
			}
		})
	}
}

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
	fs := &crashtest.FaultFS{}
	w, _, path := sealedUnderSyncNone(t, writer.Options{FS: fs, Logger: slog.New(slog.DiscardHandler)})
	fs.Inject(crashtest.Fault{Op: crashtest.OpOpen, N: 1, Path: path})
	err := w.Sync()
	if want := "open to flush " + path + ": input/output error"; err == nil || !strings.HasSuffix(err.Error(), want) || strings.Count(err.Error(), path) != 1 {
		t.Errorf("Sync: %v; want it to end %q, naming the segment once", err, want)
	}
}
