package writer_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestAppendsWaitForALaggingSeal: README, durability: "at most three
// segments are live at a time ..., so with interval and always, when the
// disk is slower than the writers, appends wait at a rotation rather than
// piling up unflushed memory".
// The seal's fsync of segment 1 is held: appends fill segment 2 and 3
// and stop at 3's end (1 being sealed, 2 finished and queued behind it, 3
// active, no next prepared: three live), and go on once it returns.
func TestAppendsWaitForALaggingSeal(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, segment.FileName(1))
	held, release := make(chan struct{}), make(chan struct{})
	var holding atomic.Bool
	fs := &crashtest.FaultFS{Before: func(c crashtest.Call) {
		if c.Op == crashtest.OpFsync && c.Path == first && holding.CompareAndSwap(false, true) {
			close(held)
			<-release
		}
	}}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncInterval, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var newest atomic.Uint64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			p, err := w.Append(faultPayload(i))
			if err != nil {
				done <- err
				return
			}
			newest.Store(max(newest.Load(), p.Seq))
		}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("segment 1 was never sealed")
	}
	// Appends go on into segment 2 and stop at a rotation: no progress for
	// 200 ms, then the newest segment appended to must be at most 3.
	last, since := newest.Load(), time.Now()
	for time.Since(since) < 200*time.Millisecond {
		time.Sleep(5 * time.Millisecond)
		if n := newest.Load(); n != last {
			last, since = n, time.Now()
		}
		if last > 3 {
			close(release)
			t.Fatalf("appended to segment %d while segment 1's seal had not returned: more than three segments live", last)
		}
	}
	mapped := mappedSegments(t, dir)
	close(release)
	if len(mapped) > 2 { // segment 1, being sealed, is unmapped and still live
		t.Fatalf("segments mapped while segment 1 was sealed: %v; want at most two beside it", mapped)
	}
	for deadline := time.Now().Add(10 * time.Second); newest.Load() <= last+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("appends stuck in segment %d after the seal returned", newest.Load())
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("appends waited in segment %d while segment 1 was sealed; mapped then: %v", last, mapped)
}

// mappedSegments lists the segment files of dir this process maps.
func mappedSegments(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, dir+"/"); i >= 0 && strings.HasSuffix(line, segment.SegmentExt) && !seen[line[i:]] {
			seen[line[i:]] = true
			out = append(out, filepath.Base(line[i:]))
		}
	}
	return out
}
