package writer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// logCapture is a slog.Handler that keeps warnings and errors, so a test
// can tell whether the writer reported a failure it did not return.
type logCapture struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logCapture) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.msgs = append(l.msgs, b.String())
	l.mu.Unlock()
	return nil
}
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }

func (l *logCapture) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// String is every message kept so far.
func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%q", l.msgs)
}

// logged waits up to 10 s for a message containing every one of subs:
// the background goroutines publish an error to appenders before they
// log it.
func (l *logCapture) logged(subs ...string) bool {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		for _, m := range l.msgs {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(m, s)
			}
			if all {
				l.mu.Unlock()
				return true
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
	}
}

func faultPayload(i int) []byte {
	b := make([]byte, 150+i%97)
	for k := range b {
		b[k] = byte(i*31 + k)
	}
	return b
}

// checkAcked reopens dir with a working file system (recovery), closes it,
// and checks that every acknowledged record is where Append said, byte for
// byte, and that verify then finds nothing.
func checkAcked(t *testing.T, dir string, acked map[segment.Position][]byte) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("reopen with a working file system: %v", err)
	}
	if st := w.Recovered(); st.DamagedSegments != 0 {
		t.Errorf("recovery found damaged segments: %+v", st)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after reopen: %v", err)
	}
	got, bad := payloads(t, dir)
	for _, s := range bad {
		t.Error(s)
	}
	lost := 0
	for p, b := range acked {
		if string(got[p]) != string(b) {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost or changed", lost, len(acked))
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("verify after reopen: %+v", f)
	}
}

// faultFigures add up what TestIOFaults did, for docs/RELIABILITY.md.
type faultFigures struct {
	mu                         sync.Mutex
	cases, injected, acked     int
	returned, logged, openFail int
}

// TestIOFaults fails the Nth call (N = 1, 2, 3) of each file operation the
// writer makes, once or from then on, while one goroutine appends across
// several rotations and syncs every 20 records. In every case the failure
// is reported (returned, or logged by the background preparer when it
// recovered before an appender needed it); a failed msync, fsync or
// directory fsync is sticky: every later Append and Sync returns
// ErrFailed, even though the device recovered; other failures (create,
// fallocate, rename) stop appends only while they last; no
// acknowledged record is lost; and a reopen with a working file system
// recovers to a log verify finds clean.
func TestIOFaults(t *testing.T) {
	ops := []crashtest.Op{crashtest.OpCreate, crashtest.OpFallocate, crashtest.OpFsync,
		crashtest.OpRename, crashtest.OpSyncDir, crashtest.OpMsync}
	fig := &faultFigures{}
	for _, op := range ops {
		for _, n := range []int{1, 2, 3} {
			for _, persist := range []bool{false, true} {
				name := fmt.Sprintf("%v/%d/once", op, n)
				if persist {
					name = fmt.Sprintf("%v/%d/persist", op, n)
				}
				t.Run(name, func(t *testing.T) { ioFault(t, op, n, persist, fig) })
			}
		}
	}
	t.Logf("SUMMARY TestIOFaults: cases=%d injected_failures=%d returned_by_append_or_sync=%d only_logged=%d open_failed=%d acknowledged=%d lost=0",
		fig.cases, fig.injected, fig.returned, fig.logged, fig.openFail, fig.acked)
}

// sticky reports whether a failure of op fails the writer for good: every
// flush (msync, fsync, directory fsync), as the kernel may drop the pages
// that failed to write and report the next flush clean.
func sticky(op crashtest.Op) bool {
	return op == crashtest.OpMsync || op == crashtest.OpFsync || op == crashtest.OpSyncDir
}

func ioFault(t *testing.T, op crashtest.Op, n int, persist bool, fig *faultFigures) {
	dir := t.TempDir()
	fs := &crashtest.FaultFS{}
	fs.Inject(crashtest.Fault{Op: op, N: n, Persist: persist})
	logs := &logCapture{}
	opts := writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs, Logger: slog.New(logs)}
	w, err := writer.Open(dir, opts)
	openFailed := err != nil
	if err != nil {
		if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Open: %v; want an error wrapping EIO that names the directory", err)
		}
		fs.Clear()
		if w, err = writer.Open(dir, opts); err != nil {
			t.Fatalf("Open after the device recovered: %v", err)
		}
	}
	acked := map[segment.Position][]byte{}
	var firstErr, unexpected error
	okAfterErr, errs := 0, 0
	note := func(err error) {
		if err == nil {
			if firstErr != nil {
				okAfterErr++
			}
			return
		}
		errs++
		if firstErr == nil {
			firstErr = err
		}
		if !errors.Is(err, syscall.EIO) && !errors.Is(err, writer.ErrFailed) && unexpected == nil {
			unexpected = err
			t.Errorf("error neither wraps the injected EIO nor ErrFailed (%d errors before it): %v", errs-1, err)
		}
		if sticky(op) && !openFailed && !errors.Is(err, writer.ErrFailed) && unexpected == nil {
			unexpected = err
			t.Errorf("%v failure not sticky: %v", op, err)
		}
		time.Sleep(2 * time.Millisecond) // let the preparer retry (every 20 ms)
	}
	const records = 900 // three segments and more: three creations
	for i := range records {
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err == nil {
			acked[pos] = p
		}
		note(err)
		if i%20 == 19 {
			note(w.Sync())
		}
		if errs > 40 && (persist || sticky(op)) || errs > 200 {
			break // it keeps failing (as it should, but for once-only faults)
		}
	}
	if fs.Injected() == 0 {
		t.Fatalf("the fault was never injected: %d %v calls", fs.Calls(op), op)
	}
	reported := firstErr != nil || logs.contains(syscall.EIO.Error())
	if !reported && !openFailed {
		t.Fatalf("the injected failure was neither returned nor logged")
	}
	switch {
	case sticky(op) && !openFailed:
		if firstErr == nil || okAfterErr > 0 {
			t.Fatalf("%v failure: first error %v, %d calls succeeded after it (want sticky ErrFailed)", op, firstErr, okAfterErr)
		}
		if err := w.Close(); !errors.Is(err, writer.ErrFailed) {
			t.Fatalf("Close after a failed %v: %v, want ErrFailed", op, err)
		}
	case persist && !openFailed:
		// The preparer retried (every 20 ms) and failed again each time;
		// appends that needed a segment kept returning the error.
		if fs.Injected() < 2 || firstErr == nil {
			t.Fatalf("a persistent %v failure: %d injected, first error %v", op, fs.Injected(), firstErr)
		}
	case !persist:
		if firstErr != nil && okAfterErr == 0 {
			t.Fatalf("a failure that happened once stopped the writer for good (%d errors): %v", errs, firstErr)
		}
		if len(acked) < records-errs {
			t.Fatalf("%d records acknowledged, %d errors", len(acked), errs)
		}
	}
	if !sticky(op) || openFailed {
		if err := w.Close(); err != nil && !errors.Is(err, syscall.EIO) {
			t.Fatalf("Close: %v", err)
		}
	}
	checkAcked(t, dir, acked)

	fig.mu.Lock()
	defer fig.mu.Unlock()
	fig.cases++
	fig.injected += fs.Injected()
	fig.acked += len(acked)
	switch {
	case openFailed:
		fig.openFail++
	case firstErr != nil:
		fig.returned++
	default:
		fig.logged++
	}
}

// TestOpenFaults fails the operations recovery makes (opening an unsealed
// segment, fsyncing it while sealing, fsyncing the directory after removing
// temporary files): Open returns the error naming the file, holds nothing
// (a second Open is not refused as locked), and an Open with a working file
// system recovers every record.
func TestOpenFaults(t *testing.T) {
	for _, op := range []crashtest.Op{crashtest.OpOpen, crashtest.OpFsync, crashtest.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			dir := t.TempDir()
			acked := crashedLog(t, dir)
			fs := &crashtest.FaultFS{}
			fs.Inject(crashtest.Fault{Op: op, N: 1, Persist: true})
			w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs})
			if err == nil {
				w.Close()
				t.Fatalf("Open succeeded although every %v failed (%d calls)", op, fs.Calls(op))
			}
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("Open: %v, want EIO", err)
			}
			checkAcked(t, dir, acked)
		})
	}
}

// crashedLog leaves in dir what kill -9 leaves: sealed segments, an
// unsealed one holding records, and a temporary file of an interrupted
// segment creation. It returns the records by position.
func crashedLog(t *testing.T, dir string) map[segment.Position][]byte {
	t.Helper()
	live := t.TempDir()
	w, err := writer.Open(live, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[segment.Position][]byte{}
	for i := range 700 {
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		acked[pos] = p
	}
	copyDir(t, live, dir) // while the writer holds it: the crash
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return acked
}

// copyDir copies the regular files of src into dst, as they were at one
// instant (testfs.CopyFiles), adding the temporary file an interrupted
// segment creation leaves.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	testfs.CopyFiles(t, src, dst)
	l, err := segment.List(dst)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dst, segment.FileName(l.NextSeq())+segment.TempExt)
	if err := os.WriteFile(tmp, make([]byte, 4096), 0o640); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: verify finds crash residue only (and temporary
	// files, which recovery removes). A copy that is no crash's would fail
	// the tests that use it for what the writer did not do.
	rep, err := verify.Dir(dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if !f.Residue && !strings.HasSuffix(f.Path, segment.SegmentExt+segment.TempExt) {
			t.Fatalf("the copy of a live writer's log is no crash's: %+v", f)
		}
	}
}

// TestFailedMappingLeavesNoGap: when a file created ahead cannot be
// mapped (here it was cut short), the preparer removes it; the files
// created after it go first, so that no crash can leave the log with a
// hole in its numbering (a gap verify reports, readers cannot fill).
func TestFailedMappingLeavesNoGap(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, Logger: slog.New(&logCapture{})})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, filepath.Join(dir, segment.FileName(4))) // 3 and 4 created ahead
	if err := os.Truncate(filepath.Join(dir, segment.FileName(3)), 100); err != nil {
		t.Fatal(err)
	}
	appendUntil(t, w, 2) // the preparer now maps 3, and fails
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		l, err := segment.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		if last, _ := l.Last(); !slices.ContainsFunc(l.Segments, func(e segment.Entry) bool { return e.Seq == 3 }) {
			if last.Seq > 3 {
				t.Fatalf("segment 3 removed while %s is still there: a crash now leaves a gap", filepath.Base(last.Path))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the short segment 3 was never removed")
		}
	}
	// Prepared again, and used. Appends that waited for it meanwhile got
	// the preparation's error.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if p, err := w.Append([]byte("after")); err == nil && p.Seq >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no append reached segment 4")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range l.Segments {
		if e.Seq != uint64(i+1) {
			t.Fatalf("segments after Close: %d at %d", e.Seq, i)
		}
	}
}
