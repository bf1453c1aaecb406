package writer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// msyncLog records every msync the writer makes, as address ranges, and
// learns where each segment is mapped from the flushes that start at its
// header. It answers "was this record's commit word flushed by an msync
// that started after a given moment?", which is what Sync promises.
type msyncLog struct {
	mu    sync.Mutex
	spans [][2]uintptr       // [start, end) of each msync, in call order
	bases map[uint64]uintptr // segment sequence -> mapping address
	delay time.Duration      // added to every msync, to let Sync callers pile up
	// When each msync (by the index of its span) began and returned
	// (zero while it runs), for the timed claims (sync_timed_test.go).
	began, ended []time.Time
	calls        map[int]int          // FaultFS call number -> index of its span
	hold         func(crashtest.Call) // if set, called inside each msync's Before
}

func newMsyncLog(fs *crashtest.FaultFS) *msyncLog {
	l := &msyncLog{bases: map[uint64]uintptr{}, calls: map[int]int{}}
	fs.Before = func(c crashtest.Call) {
		if c.Op != crashtest.OpMsync || len(c.Msync) == 0 {
			return
		}
		a := uintptr(unsafe.Pointer(unsafe.SliceData(c.Msync)))
		l.mu.Lock()
		if h, err := segment.DecodeHeader(c.Msync); err == nil {
			l.bases[h.Seq] = a
		}
		l.calls[c.N] = len(l.spans)
		l.spans = append(l.spans, [2]uintptr{a, a + uintptr(len(c.Msync))})
		l.began, l.ended = append(l.began, time.Now()), append(l.ended, time.Time{})
		d, hold := l.delay, l.hold
		l.mu.Unlock()
		time.Sleep(d)
		if hold != nil {
			hold(c)
		}
	}
	fs.After = func(c crashtest.Call) {
		if c.Op != crashtest.OpMsync || c.Err != nil {
			return
		}
		l.mu.Lock()
		if i, ok := l.calls[c.N]; ok {
			l.ended[i] = time.Now()
		}
		l.mu.Unlock()
	}
	return l
}

func (l *msyncLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.spans)
}

// flushedSince reports whether an msync numbered since or later covered
// the commit word of the frame at p.
func (l *msyncLog) flushedSince(p segment.Position, since int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	base, ok := l.bases[p.Seq]
	if !ok {
		return false
	}
	a := base + uintptr(p.Offset)
	for _, s := range l.spans[since:] {
		if s[0] <= a && a+4 <= s[1] {
			return true
		}
	}
	return false
}

// TestSyncCoversFramesCommittedAfterAFlush: a reservation open while
// another record is appended and synced (SyncAlways) is committed after
// that flush. Its Commit must flush its page again: the earlier msync
// wrote the page while the frame was still reserved.
func TestSyncCoversFramesCommittedAfterAFlush(t *testing.T) {
	fs := &crashtest.FaultFS{}
	ml := newMsyncLog(fs)
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncAlways, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append([]byte("first")); err != nil { // the segment's first flush, from its header
		t.Fatal(err)
	}
	r, err := w.Reserve(100)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Bytes(), bytes.Repeat([]byte("r"), 100))
	if _, err := w.Append([]byte("later, synced first")); err != nil {
		t.Fatal(err)
	}
	n := ml.count()
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if !ml.flushedSince(r.Position(), n) {
		t.Fatalf("Commit (SyncAlways) returned, but no msync after it covered the record at %v: a power loss could lose it", r.Position())
	}
}

// TestSyncAlwaysAcrossRotations: with SyncAlways every Append returns only
// after an msync that started after the Append began covered the record,
// including the first records of each new segment.
func TestSyncAlwaysAcrossRotations(t *testing.T) {
	fs := &crashtest.FaultFS{}
	ml := newMsyncLog(fs)
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncAlways, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	var missed []segment.Position
	seqs := map[uint64]bool{}
	for i := range 1500 {
		n := ml.count()
		p, err := w.Append(faultPayload(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs[p.Seq] = true
		if !ml.flushedSince(p, n) {
			missed = append(missed, p)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(seqs) < 4 {
		t.Fatalf("only %d segments: rotation not exercised", len(seqs))
	}
	if len(missed) > 0 {
		t.Fatalf("%d of 1500 Appends (SyncAlways) returned before their record was flushed; first at %v", len(missed), missed[0])
	}
}

// TestSyncGroupCommit: concurrent Sync callers share flushes. Each of 32
// goroutines appends a record and calls Sync at once while every msync
// takes 3 ms more: all return nil, each after an msync that began after
// its record was committed and covered it, and there are fewer msyncs
// than callers.
func TestSyncGroupCommit(t *testing.T) {
	fs := &crashtest.FaultFS{}
	ml := newMsyncLog(fs)
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append([]byte("zero")); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil { // learn the mapping's address
		t.Fatal(err)
	}
	ml.mu.Lock()
	ml.delay = 3 * time.Millisecond
	ml.mu.Unlock()
	const callers = 32
	before := ml.count()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := w.Append(faultPayload(i))
			if err != nil {
				errs <- err
				return
			}
			n := ml.count() // msyncs from n on began after the record was committed
			<-start
			if err := w.Sync(); err != nil {
				errs <- err
				return
			}
			if !ml.flushedSince(p, n) {
				t.Errorf("Sync returned, but no msync begun after the record at %v was committed covered it", p)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := ml.count() - before; m >= callers {
		t.Fatalf("%d msyncs for %d concurrent Sync callers: no group commit", m, callers)
	} else {
		t.Logf("%d concurrent Sync callers, %d msyncs", callers, m)
	}
}

// fsyncLog records the files the writer fsyncs, in call order.
type fsyncLog struct {
	mu    sync.Mutex
	paths []string
}

func newFsyncLog(fs *crashtest.FaultFS) *fsyncLog {
	l := &fsyncLog{}
	fs.Before = func(c crashtest.Call) {
		if c.Op == crashtest.OpFsync {
			l.mu.Lock()
			l.paths = append(l.paths, c.Path)
			l.mu.Unlock()
		}
	}
	return l
}

// since returns the paths fsynced from call n on.
func (l *fsyncLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.paths[n:]...)
}

func (l *fsyncLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.paths)
}

// TestSyncNoneCoversSealedSegments: with SyncNone sealing flushes nothing,
// so Sync must fsync the segments sealed since the last Sync, not only
// msync the ones still mapped; and a second Sync does not fsync them again.
func TestSyncNoneCoversSealedSegments(t *testing.T) {
	fs := &crashtest.FaultFS{}
	fl := newFsyncLog(fs)
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendUntil(t, w, 4)
	sealed := []string{filepath.Join(dir, segment.FileName(1)), filepath.Join(dir, segment.FileName(2)), filepath.Join(dir, segment.FileName(3))}
	for _, p := range sealed {
		waitSealed(t, p)
	}
	n := fl.count()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range fl.since(n) {
		got[p]++
	}
	for _, p := range sealed {
		if got[p] != 1 {
			t.Errorf("Sync fsynced sealed %s %d times, want 1 (fsyncs: %v)", p, got[p], fl.since(n))
		}
	}
	n = fl.count()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, p := range fl.since(n) {
		if slices.Contains(sealed, p) {
			t.Errorf("a second Sync fsynced %s again", p)
		}
	}
}

// sealFailFS fails the fsync that seals the segment named first, slowly:
// the first fsync of that file is its header's, at creation.
type sealFailFS struct {
	*crashtest.FaultFS
	first  string
	n      int
	inSeal chan struct{}
}

func (f *sealFailFS) Fsync(fh *os.File) error {
	if strings.HasPrefix(filepath.Base(fh.Name()), f.first) {
		if f.n++; f.n == 2 { // only the sealer fsyncs it after its creation
			close(f.inSeal)
			time.Sleep(100 * time.Millisecond) // a slow, failing disk
			return syscall.EIO
		}
	}
	return f.FaultFS.Fsync(fh)
}

// TestSyncSeesFailedSeal: a Sync that meets a segment while the sealer's
// fsync of it fails must return that failure. The Sync waits for the seal
// and then finds the segment unmapped; it must not take it for a durable
// one. (Before the seal kept its error for it, the sticky error the sealer
// sets just after the failure made this pass, by timing, on this machine.)
func TestSyncSeesFailedSeal(t *testing.T) {
	fs := &sealFailFS{FaultFS: &crashtest.FaultFS{}, first: segment.FileName(1), inSeal: make(chan struct{})}
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncInterval, SyncInterval: time.Hour, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendUntil(t, w, 2)
	select {
	case <-fs.inSeal:
	case <-time.After(10 * time.Second):
		t.Fatal("segment 1 was not sealed")
	}
	if err := w.Sync(); err == nil {
		t.Fatal("Sync returned nil while sealing segment 1 failed to fsync it: its records were never flushed")
	}
}

// appendUntil appends records until one lands in segment seq.
func appendUntil(t *testing.T, w *writer.Writer, seq uint64) {
	t.Helper()
	for i := 0; ; i++ {
		p, err := w.Append(faultPayload(i))
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq >= seq {
			return
		}
	}
}
