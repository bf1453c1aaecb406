package writer_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestOpenFsyncsTheDirectoryItContinuesIn: Open continues in the newest
// segment file when it holds no record. That file may have been created
// by a writer killed between its rename and the directory fsync after it,
// so its name may not be durable: Open fsyncs the directory before any
// record goes in (before, it did only after removing temporary files, and
// a SyncAlways Append could return for a record in a file a power cut
// would drop whole).
func TestOpenFsyncsTheDirectoryItContinuesIn(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	appendUntil(t, w, 2)
	waitFor(t, filepath.Join(dir, segment.FileName(3))) // prepared: Close leaves it for the next Open
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := l.Last()
	fs := &crashtest.FaultFS{}
	var dirSyncs atomic.Int32
	fs.Before = func(c crashtest.Call) {
		if c.Op == crashtest.OpSyncDir {
			dirSyncs.Add(1)
		}
	}
	w, err = writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncAlways, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := dirSyncs.Load()
	pos, err := w.Append([]byte("acknowledged durable"))
	if err != nil {
		t.Fatal(err)
	}
	if pos.Seq != last.Seq {
		t.Fatalf("appended to segment %d, want the empty newest one, %d: the test no longer covers reuse", pos.Seq, last.Seq)
	}
	if before == 0 {
		t.Errorf("Open continued in %s without fsyncing the directory: its name may not be durable", filepath.Base(last.Path))
	}
}

// TestSyncAfterReopenCoversSegmentsSealedBefore: a SyncNone writer seals
// without flushing and keeps the list of such segments for its Sync in
// memory. After it dies (or closes) the next writer's Sync must still make
// those records durable: they were committed before that call. So too
// the intact records of a segment recovery leaves unsealed as damaged.
func TestSyncAfterReopenCoversSegmentsSealedBefore(t *testing.T) {
	for _, how := range []string{"crashed", "closed", "damaged"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			var acked map[segment.Position][]byte
			if how != "closed" {
				acked = crashedLog(t, dir)
				if how == "damaged" {
					tearNewest(t, dir, acked)
				}
			} else {
				acked = map[segment.Position][]byte{}
				w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 700 {
					pos, err := w.Append(faultPayload(i))
					if err != nil {
						t.Fatal(err)
					}
					acked[pos] = faultPayload(i)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			fs := &crashtest.FaultFS{}
			fl := newFsyncLog(fs)
			w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			flushed := fl.since(0)
			segs := map[uint64]bool{}
			for p := range acked {
				segs[p.Seq] = true
			}
			if len(segs) < 3 {
				t.Fatalf("records in %d segments only", len(segs))
			}
			for seq := range segs {
				p := filepath.Join(dir, segment.FileName(seq))
				if !slices.Contains(flushed, p) {
					t.Errorf("%s holds records committed before Sync returned nil, and was not fsynced (fsynced: %v)", filepath.Base(p), flushed)
				}
			}
		})
	}
}

// TestCloseReportsFailedDirectoryFsync: at Close the preparer removes the
// segment file it created ahead and fsyncs the directory. A failure of
// that fsync is a flush failure like any other: sticky, and Close returns
// it (it was only logged).
func TestCloseReportsFailedDirectoryFsync(t *testing.T) {
	fs := &crashtest.FaultFS{}
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncInterval, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	appendUntil(t, w, 2) // a rotation: segment 3 prepared, 4 created ahead
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(w.Dir(), segment.FileName(4)))
	fs.Inject(crashtest.Fault{Op: crashtest.OpSyncDir, N: fs.Calls(crashtest.OpSyncDir) + 1, Persist: true})
	err = w.Close()
	if fs.Injected() == 0 {
		t.Fatal("no directory fsync at Close: the test no longer covers it")
	}
	if err == nil {
		t.Fatal("Close returned nil although a directory fsync failed")
	}
}

// waitFor waits until the file at path exists.
func waitFor(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Lstat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not there after 10 s", path)
		}
	}
}

// TestSyncPassesOverInheritedFileItCannotOpen: the first Sync after Open
// flushes the sealed segment files recovery found. One it cannot open
// (its mode changed since) was never this writer's: Sync passes over it
// and still flushes the others, instead of failing the writer for good.
// A segment this writer sealed itself that it cannot open again still
// fails Sync: its records were acknowledged by this writer.
func TestSyncPassesOverInheritedFileItCannotOpen(t *testing.T) {
	dir := writtenUnsynced(t)
	denied := filepath.Join(dir, segment.FileName(2))
	fs := &denyFS{FaultFS: &crashtest.FaultFS{}}
	fs.deny.Store(&denied)
	fl := newFsyncLog(fs.FaultFS)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync with an inherited segment it cannot open: %v", err)
	}
	for _, seq := range []uint64{1, 3} {
		if p := filepath.Join(dir, segment.FileName(seq)); !slices.Contains(fl.since(0), p) {
			t.Errorf("%s was not fsynced (fsynced: %v)", filepath.Base(p), fl.since(0))
		}
	}
	if _, err := w.Append([]byte("after")); err != nil {
		t.Fatalf("Append after that Sync: %v", err)
	}

	// Now a segment this writer seals, then cannot open to flush.
	appendUntil(t, w, 8)
	own := filepath.Join(dir, segment.FileName(6))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := segment.ReadFooter(own); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%s not sealed after 10 s: %v", own, err)
		}
	}
	fs.deny.Store(&own)
	if err := w.Sync(); err == nil || !strings.Contains(err.Error(), own) {
		t.Fatalf("Sync with a segment of its own it cannot open: %v", err)
	}
}

// denyFS refuses to open one file, as the operating system refuses a
// file whose mode no longer lets the writer read it.
type denyFS struct {
	*crashtest.FaultFS
	deny atomic.Pointer[string]
}

func (d *denyFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if p := d.deny.Load(); p != nil && name == *p {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EACCES}
	}
	return d.FaultFS.OpenFile(name, flag, perm)
}

// tearNewest flips a payload byte of a record in the newest segment
// holding one: a torn frame, for which recovery leaves the segment as it
// is.
func tearNewest(t *testing.T, dir string, acked map[segment.Position][]byte) {
	t.Helper()
	var last segment.Position
	for p := range acked {
		if p.Seq > last.Seq {
			last = p
		}
	}
	path := filepath.Join(dir, segment.FileName(last.Seq))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[last.Offset+segment.FrameHeaderSize] ^= 0xff
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFsyncsInheritedSegments: a writer under interval or always that
// reopens a log written under none inherits sealed segments that may never
// have been written back. Its first Sync (the first tick, under interval)
// fsyncs them; a writer closed before that never did, so records its
// policy calls durable (committed long before a power cut) were not. Close
// now fsyncs them under both policies.
func TestCloseFsyncsInheritedSegments(t *testing.T) {
	for _, mode := range []writer.SyncMode{writer.SyncInterval, writer.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := writtenUnsynced(t)
			fs := &crashtest.FaultFS{}
			fl := newFsyncLog(fs)
			o := writer.Options{SegmentSize: 64 << 10, Sync: mode, FS: fs}
			if mode == writer.SyncInterval {
				o.SyncInterval = time.Hour // no tick before Close
			}
			w, err := writer.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for _, seq := range []uint64{1, 2, 3} {
				if p := filepath.Join(dir, segment.FileName(seq)); !slices.Contains(fl.since(0), p) {
					t.Errorf("%s was not fsynced by Open and Close (fsynced: %v)", filepath.Base(p), fl.since(0))
				}
			}
			// A failed fsync there is Close's error, as it would be Sync's.
			fs = &crashtest.FaultFS{}
			fs.Inject(crashtest.Fault{Op: crashtest.OpFsync, N: 1})
			o.FS = fs
			if w, err = writer.Open(dir, o); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); !errors.Is(err, writer.ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close whose fsync of an inherited segment failed: %v", err)
			}
		})
	}
}

// writtenUnsynced returns a log directory written under SyncNone and
// closed: segments 1 to 3 sealed, perhaps never written back.
func writtenUnsynced(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	appendUntil(t, w, 4)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCloseGivingUpFsyncsInheritedSegments: a Close that gives up on a
// reservation (CloseTimeout) fsyncs the sealed segments recovery
// inherited too. The reservation is in the active segment, which stays
// unsealed for the next Open; the inherited segments have nothing to do
// with it. Close fsynced them only when it had sealed everything, so a
// writer closed with a reservation open before its first Sync left
// records committed long before not durable, as before b127321.
func TestCloseGivingUpFsyncsInheritedSegments(t *testing.T) {
	for _, mode := range []writer.SyncMode{writer.SyncInterval, writer.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := writtenUnsynced(t)
			fs := &crashtest.FaultFS{}
			fl := newFsyncLog(fs)
			o := writer.Options{SegmentSize: 64 << 10, Sync: mode, FS: fs, CloseTimeout: 50 * time.Millisecond}
			if mode == writer.SyncInterval {
				o.SyncInterval = time.Hour // no tick before Close
			}
			w, err := writer.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Reserve(3); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); !errors.Is(err, writer.ErrReservationsOpen) {
				t.Fatalf("Close with a reservation open: %v", err)
			}
			for _, seq := range []uint64{1, 2, 3} {
				if p := filepath.Join(dir, segment.FileName(seq)); !slices.Contains(fl.since(0), p) {
					t.Errorf("%s was not fsynced by Open and Close (fsynced: %v)", filepath.Base(p), fl.since(0))
				}
			}
			// Giving up and a failed fsync: Close returns both (it
			// returned ErrReservationsOpen alone, the failure only logged).
			// The fsync that fails is an inherited segment's: the first
			// fsync of all was, unless the segment the writer prepares
			// in the background came first (a loaded machine), whose
			// failure fails the writer before Close gives up on anything.
			dir = writtenUnsynced(t)
			fs = &crashtest.FaultFS{}
			fs.Inject(crashtest.Fault{Op: crashtest.OpFsync, N: 1, Path: filepath.Join(dir, segment.FileName(2))})
			o.FS = fs
			if w, err = writer.Open(dir, o); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Reserve(3); err != nil {
				t.Fatal(err)
			}
			err = w.Close()
			if !errors.Is(err, writer.ErrReservationsOpen) || !errors.Is(err, writer.ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close that gave up on a reservation and whose fsync of an inherited segment failed: %v", err)
			}
		})
	}
}
