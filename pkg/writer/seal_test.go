package writer_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
	"golang.org/x/sys/unix"
)

// TestSealMakesRecordsDurableBeforeTheFooter: with a durable sync mode the
// sealer fsyncs a finished segment while its footer is still zero, and
// again after writing it, so a power loss between the two leaves a segment
// that reads as unsealed, never a footer vouching for records the disk
// does not have.
func TestSealMakesRecordsDurableBeforeTheFooter(t *testing.T) {
	for _, mode := range []writer.SyncMode{writer.SyncInterval, writer.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := &crashtest.FaultFS{}
			var mu sync.Mutex
			seen := map[string][]bool{} // segment file -> footer present at each fsync
			fs.Before = func(c crashtest.Call) {
				// The file is called by its .tmp name until it is renamed;
				// an fsync of it after that is the sealer's.
				path := c.Path
				if c.Op != crashtest.OpFsync || strings.HasSuffix(path, segment.TempExt) {
					return
				}
				img, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("read %s at its fsync: %v", path, err)
					return
				}
				h, err := segment.DecodeHeader(img)
				if err != nil {
					t.Errorf("%s at its fsync: %v", path, err)
					return
				}
				_, ferr := segment.DecodeFooter(img, h)
				mu.Lock()
				seen[path] = append(seen[path], ferr == nil)
				mu.Unlock()
			}
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: mode, FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				if _, err := w.Append(faultPayload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			sealed := 0
			for _, s := range listSegments(t, dir) {
				got := seen[s]
				if img, err := os.ReadFile(s); err == nil && segment.LoadLength(img, segment.HeaderSize) == 0 {
					continue // prepared, never written: Close leaves it for the next Open
				}
				if len(got) < 2 || got[0] || !got[len(got)-1] {
					t.Errorf("%s: footer present at each fsync %v; want absent at the first, present at the last", filepath.Base(s), got)
				}
				sealed++
			}
			if sealed < 4 {
				t.Fatalf("only %d segments: rotation not exercised", sealed)
			}
		})
	}
}

// TestSealDropsCleanPages: a sealed segment's pages leave the page cache
// (their memory is reused for the next segment) unless KeepCache: at once
// in a durable sync mode, whose seal leaves them clean, and after the
// dropper wrote them back under SyncNone.
func TestSealDropsPages(t *testing.T) {
	for _, c := range []struct {
		mode     writer.SyncMode
		keep     bool
		resident bool
	}{
		{writer.SyncInterval, false, false},
		{writer.SyncInterval, true, true},
		{writer.SyncNone, false, false},
		{writer.SyncNone, true, true},
	} {
		dir := t.TempDir()
		w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20, Sync: c.mode, KeepCache: c.keep})
		if err != nil {
			t.Fatal(err)
		}
		rec := bytes.Repeat([]byte("x"), 1000)
		for range 3000 { // about three segments
			if _, err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		segs := listSegments(t, dir)
		first := residentFraction(t, segs[0])
		if got := first > 0.5; got != c.resident {
			t.Errorf("sync %v, KeepCache %v: %.0f%% of the first sealed segment is in the page cache; want resident=%v",
				c.mode, c.keep, 100*first, c.resident)
		}
	}
}

func listSegments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segment.SegmentExt))
	if err != nil || len(m) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	return m
}

// residentFraction maps the file (which faults nothing in) and asks the
// kernel which of its pages are in the page cache.
func residentFraction(t *testing.T, path string) float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix has no Mincore wrapper on Linux.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(m))), uintptr(len(m)), uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return float64(n) / float64(len(vec))
}

// TestCloseLeavesOneEmptySegment: the preparer creates the file after the
// next segment ahead of time. After Close the log holds at most one
// segment without records (the prepared one the next Open continues in),
// verify finds it clean, and reopening it twice adds no empty segment.
//
// A writer that appended nothing adds no segment: its active segment is
// left empty and unsealed (it was sealed, one more empty file per Open and
// Close), and the next Open continues in it. Two rounds without records
// come first and after each round with them.
func TestCloseLeavesOneEmptySegment(t *testing.T) {
	dir := t.TempDir()
	before := 0
	for round, records := range []int{0, 0, 1000, 0, 0, 1000, 0} { // 1000: several rotations
		w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		for i := range records {
			if _, err := w.Append(faultPayload(i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond) // let the preparer create ahead
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		after := len(listSegments(t, dir))
		if records == 0 && round > 0 && after != before {
			t.Fatalf("round %d appended nothing, and the log went from %d to %d segment files", round, before, after)
		}
		before = after
		empty := 0
		for _, s := range listSegments(t, dir) {
			img, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			if segment.LoadLength(img, segment.HeaderSize) == 0 {
				empty++
			}
		}
		if empty > 1 {
			t.Fatalf("round %d: %d segments without records after Close, want at most 1", round, empty)
		}
		rep, err := verify.Dir(dir, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if code := rep.ExitCode(false); code != 0 {
			t.Fatalf("round %d: verify exit %d after a clean Close: %+v", round, code, rep.Findings)
		}
	}
}

// TestRecoveryOfTwoEmptySegments: a writer killed while idle leaves the
// next segment (prepared, empty) and the files after it (created ahead,
// empty). Recovery seals the older as a segment without records and
// continues in the newer; nothing is lost and verify finds the log clean.
func TestRecoveryOfTwoEmptySegments(t *testing.T) {
	live, crashed := t.TempDir(), t.TempDir()
	w, err := writer.Open(live, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 1000
	for i := range n {
		if _, err := w.Append(faultPayload(i)); err != nil {
			t.Fatal(err)
		}
	}
	// What a kill would leave: the files as they are now (the page cache
	// survives a process crash). Copy them once both empty ones exist.
	var segs []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		segs = listSegments(t, live)
		empty := 0
		for _, s := range segs[max(0, len(segs)-2):] {
			if img, err := os.ReadFile(s); err == nil && segment.LoadLength(img, segment.HeaderSize) == 0 {
				empty++
			}
		}
		if empty == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer did not create a segment ahead: %v", segs)
		}
	}
	for _, s := range segs {
		img, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, filepath.Base(s)), img, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	w2, err := writer.Open(crashed, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if _, err := w2.Append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Dir(crashed, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code := rep.ExitCode(false); code != 0 || rep.Totals.Records != n+1 {
		t.Fatalf("verify exit %d, %d records (want 0, %d): %+v", code, rep.Totals.Records, n+1, rep.Findings)
	}
}

// sealFsyncFails fails every fsync of a segment file that has already
// been renamed from its temporary name: the sealer's, never the header's.
type sealFsyncFails struct {
	crashtest.FaultFS
	failed atomic.Int32
}

func (f *sealFsyncFails) Fsync(fh *os.File) error {
	if !strings.HasSuffix(fh.Name(), segment.TempExt) {
		f.failed.Add(1)
		return syscall.EIO
	}
	return f.FaultFS.Fsync(fh)
}

// TestSealFsyncFailureIsSticky: when the seal's fsync fails (SyncInterval),
// the writer fails for good: Append, Sync and Close return ErrFailed from
// then on, and a reopen with a working disk recovers every acknowledged
// record.
func TestSealFsyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	fs := &sealFsyncFails{}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncInterval, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	acked := map[segment.Position][]byte{}
	var firstErr error
	for i := 0; i < 5000 && firstErr == nil; i++ {
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err != nil {
			firstErr = err
			break
		}
		acked[pos] = p
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // let the sealer run
		}
	}
	// The sealer may not have failed yet (on a loaded machine it may not
	// have run at all): ask until it has. Sync succeeds until then, as it
	// should (it msyncs, the sealer's fsync is what fails), so a fixed wait
	// before a single Sync would fail the test whenever the sealer was
	// slower than the wait; the deadline only bounds a sealer that never
	// fails, which is the bug this test looks for.
	for deadline := time.Now().Add(time.Minute); firstErr == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		firstErr = w.Sync()
	}
	if fs.failed.Load() == 0 || !errors.Is(firstErr, writer.ErrFailed) || !errors.Is(firstErr, syscall.EIO) {
		t.Fatalf("%d seal fsyncs failed; first error %v, want ErrFailed wrapping EIO", fs.failed.Load(), firstErr)
	}
	if _, err := w.Append([]byte("later")); !errors.Is(err, writer.ErrFailed) {
		t.Fatalf("Append after the failure: %v, want ErrFailed", err)
	}
	if err := w.Sync(); !errors.Is(err, writer.ErrFailed) {
		t.Fatalf("Sync after the failure: %v, want ErrFailed", err)
	}
	if err := w.Close(); !errors.Is(err, writer.ErrFailed) {
		t.Fatalf("Close after the failure: %v, want ErrFailed", err)
	}
	checkAcked(t, dir, acked)
}
