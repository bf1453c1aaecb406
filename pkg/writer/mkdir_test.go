package writer_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestOpenDirectoryNamedThroughLinkAndDotDot: a log directory named
// through a symbolic link followed by ".." (current/../shared/log, current
// linking to releases/r1) is one directory for Open, the one its segment
// paths name: shared/log beside current, as readers and verify (whose
// paths are joined, so cleaned) find it too. Open made and locked the
// directory the kernel resolves, releases/shared/log, then failed to
// fsync a shared that was never made, leaving both behind; had both
// existed, LOCK would have held one directory and the segments gone into
// the other (found by a review).
func TestOpenDirectoryNamedThroughLinkAndDotDot(t *testing.T) {
	base := t.TempDir()
	release := filepath.Join(base, "releases", "r1")
	if err := os.MkdirAll(release, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(release, filepath.Join(base, "current")); err != nil {
		t.Fatal(err)
	}
	dir := base + "/current/../shared/log" // not Join: it cleans
	made := filepath.Join(base, "shared")
	fs, synced := recordSyncDirs()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.Append([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := segment.WriterInfo(filepath.Join(made, "log"))
	if err != nil || !info.Alive {
		t.Fatalf("writer of %s: %+v, %v; want the one holding it", filepath.Join(made, "log"), info, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(made, "log", segment.FileName(p.Seq))); err != nil {
		t.Fatal(err)
	}
	got := synced()
	// The parents of the two directories made, before anything else.
	if len(got) < 2 || got[0] != base || got[1] != made {
		t.Fatalf("directories fsynced: %q; want %s and %s first", got, base, made)
	}
	if _, err := os.Lstat(filepath.Join(base, "releases", "shared")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("releases/shared: %v; want it never made", err)
	}

	// A failed Open removes the directories it made.
	if err := os.RemoveAll(made); err != nil {
		t.Fatal(err)
	}
	fs = &crashtest.FaultFS{}
	fs.Inject(crashtest.Fault{Op: crashtest.OpCreate, N: 1})
	if _, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs}); err == nil {
		t.Fatal("Open with its first segment's creation failing succeeded")
	}
	for _, d := range []string{made, filepath.Join(base, "releases", "shared")} {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a failed Open left %s: %v", d, err)
		}
	}
}

// TestOpenDotDotNameExcludesASecondWriter: with both directories present,
// a writer opened as current/../shared/log locked releases/shared/log and
// appended to shared/log's segments, and a second writer opened as
// shared/log took its lock too: both appended at 1:64 of the same
// segment (found by a review).
func TestOpenDotDotNameExcludesASecondWriter(t *testing.T) {
	base := t.TempDir()
	release := filepath.Join(base, "releases", "r1")
	for _, d := range []string{release, filepath.Join(base, "releases", "shared", "log"), filepath.Join(base, "shared", "log")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(release, filepath.Join(base, "current")); err != nil {
		t.Fatal(err)
	}
	opts := writer.Options{SegmentSize: 64 << 10}
	a, err := writer.Open(base+"/current/../shared/log", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := writer.Open(filepath.Join(base, "shared", "log"), opts); !errors.Is(err, segment.ErrLocked) {
		if err == nil {
			b.Close()
		}
		t.Fatalf("second writer of the directory the first appends to: %v; want ErrLocked", err)
	}
}

// recordSyncDirs is a FaultFS that records the directories fsynced, and
// what it recorded so far.
func recordSyncDirs() (*crashtest.FaultFS, func() []string) {
	var mu sync.Mutex
	var synced []string
	fs := &crashtest.FaultFS{Before: func(c crashtest.Call) {
		if c.Op == crashtest.OpSyncDir {
			mu.Lock()
			synced = append(synced, c.Path)
			mu.Unlock()
		}
	}}
	return fs, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(synced)
	}
}
