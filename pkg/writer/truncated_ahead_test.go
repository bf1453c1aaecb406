package writer_test

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"golang.org/x/sys/unix"
)

// cutAhead is the file system of a writer whose first segment file made
// ahead (by the creator: segment 3, after Open's segment 1 and the
// preparer's own segment 2) is changed by someone else once it has its
// final name, before the preparer maps it: cut is called then, once.
type cutAhead struct {
	*crashtest.FaultFS
	path string
	cut  func(path string) (filler string, err error)

	mu     sync.Mutex
	done   bool
	made   int64  // the changed file's header's creation time
	filler string // the file that fills the disk, if cut filled it
	err    error
}

func (c *cutAhead) after(call crashtest.Call) {
	if call.Op != crashtest.OpRename || call.Err != nil || call.Path != c.path+segment.TempExt {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return // the preparer's own retry
	}
	c.done = true
	var h segment.Header
	if h, c.err = segment.ReadHeader(c.path); c.err == nil {
		c.made = h.Created
		c.filler, c.err = c.cut(c.path)
	}
}

// punchAndFill punches out everything of the file at path after its first
// page and fills the file system it is on; it returns the filler's path.
// The file keeps its size, so a mapping's size check passes, but its
// pages past the first cannot be had again: a store there faults as past
// a cut.
func punchAndFill(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	page := int64(os.Getpagesize())
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, page, st.Size()-page); err != nil {
		return "", fmt.Errorf("punch %s: %w", path, err)
	}
	filler := filepath.Join(filepath.Dir(filepath.Dir(path)), "filler")
	ff, err := os.Create(filler)
	if err != nil {
		return "", err
	}
	defer ff.Close()
	buf := make([]byte, page)
	for {
		if _, err := ff.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return "", err
			}
			return filler, nil
		}
	}
}

// A segment file the creator made ahead whose pages go between the
// preparer's mapping (whose size check it passes) and its pre-faulting
// (no writer.FS call comes in between, so here they are punched out on a
// full disk before the mapping): the pre-faulting fails at the first page
// the file lost, naming the file and the offset; the preparer removes the
// file and reports the error to the appender that needs the segment, as
// no sticky failure; and once the disk has room again, the retry makes
// the segment anew and appending goes on in it, every acknowledged record
// where Append said.
func TestPreparerRetriesCreatedAheadFileCutBeforePrefault(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := filepath.Join(testfs.Small(t, "1m"), "log")
	path := filepath.Join(dir, segment.FileName(3))
	want := fmt.Sprintf("%s: changed while it was being pre-faulted (truncated?): no data at offset %d", path, os.Getpagesize())
	retryAfterCut(t, dir, punchAndFill, want)
}

// The same file truncated before the preparer maps it: the mapping's size
// check refuses it, and the preparer removes it and makes it again as
// after a failed pre-faulting.
func TestPreparerRetriesCreatedAheadFileTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, segment.FileName(3))
	want := fmt.Sprintf("%s: map: file is 8192 bytes, want %d", path, 64<<10)
	retryAfterCut(t, dir, func(p string) (string, error) { return "", os.Truncate(p, 8192) }, want)
}

// retryAfterCut runs a writer on dir whose segment 3, made ahead, is
// changed by cut before it is mapped, and checks that the Append that
// needs it fails with want (no sticky failure), and that once cut's
// filler (if any) is removed appending goes on in a segment 3 made anew.
func retryAfterCut(t *testing.T, dir string, cut func(string) (string, error), want string) {
	t.Helper()
	path := filepath.Join(dir, segment.FileName(3))
	fs := &cutAhead{FaultFS: &crashtest.FaultFS{}, path: path, cut: cut}
	fs.After = fs.after
	logs := &logCapture{}
	const size = 64 << 10
	w, err := writer.Open(dir, writer.Options{SegmentSize: size, Sync: writer.SyncNone, FS: fs, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	acked := map[segment.Position][]byte{}
	var failed error
	for i := 0; failed == nil; i++ {
		p := faultPayload(i)
		pos, err := w.Append(p)
		switch {
		case err != nil:
			failed = err
		case pos.Seq > 2:
			t.Fatalf("record %d appended in segment %d, changed before it was mapped", i, pos.Seq)
		default:
			acked[pos] = p
		}
	}
	fs.mu.Lock()
	made, filler, ferr, done := fs.made, fs.filler, fs.err, fs.done
	fs.mu.Unlock()
	if ferr != nil || !done {
		t.Fatalf("changing %s: %v (done: %v); Append: %v", path, ferr, done, failed)
	}
	// With the disk still full, the preparer's retry can fail (ENOSPC)
	// before the appender looks: that error replaces the first one, which
	// the log must still show.
	retried := filler != "" && errors.Is(failed, syscall.ENOSPC)
	if (failed.Error() != want && !retried) || errors.Is(failed, writer.ErrFailed) {
		t.Fatalf("Append needing segment 3: %v; want %q, not a sticky failure", failed, want)
	}
	if !logs.logged("cannot prepare the next segment", want) {
		t.Errorf("the preparer logged %s, want its failure: %s", logs, want)
	}
	if filler != "" {
		// Removed before the error was published; the disk is still
		// full, so no retry has made it again.
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after its pre-faulting failed: %v, want it removed", path, err)
		}
		if err := w.Sync(); err != nil {
			t.Fatalf("Sync with the next segment unprepared: %v", err)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
	var pos segment.Position
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p := faultPayload(-1)
		if pos, err = w.Append(p); err == nil {
			acked[pos] = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appending did not resume within 10 s: %v", err)
		}
		if !errors.Is(err, syscall.ENOSPC) && err.Error() != want {
			t.Fatalf("Append after the failure: %v", err)
		}
	}
	if pos.Seq != 3 {
		t.Fatalf("first record after the retry in segment %d, want 3", pos.Seq)
	}
	var st syscall.Stat_t
	h, err := segment.ReadHeader(path)
	if err == nil {
		err = syscall.Stat(path, &st)
	}
	if err != nil {
		t.Fatal(err)
	}
	if h.Created == made || st.Size != size || st.Blocks*512 < size {
		t.Fatalf("%s after the retry: created %d (the changed one %d), %d bytes, %d reserved, want %d: not made anew", path, h.Created, made, st.Size, st.Blocks*512, size)
	}
	for i := range 400 { // on through a few more rotations
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err != nil {
			t.Fatalf("append %d after the retry: %v", i, err)
		}
		acked[pos] = p
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, dir, acked)
}
