package writer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// durableAt returns when the record at p became durable, in the model
// TestPowerCut simulates: the earliest return of an msync that began
// after committed and covered its commit word; ok is false if none has
// returned yet.
func (l *msyncLog) durableAt(p segment.Position, committed time.Time) (at time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	base, known := l.bases[p.Seq]
	if !known {
		return at, false
	}
	a := base + uintptr(p.Offset)
	for i, s := range l.spans {
		if l.began[i].Before(committed) || l.ended[i].IsZero() || a < s[0] || a+4 > s[1] {
			continue
		}
		if !ok || l.ended[i].Before(at) {
			at, ok = l.ended[i], true
		}
	}
	return at, ok
}

// TestSyncIntervalFlushesWithoutSync: under SyncInterval a record is made
// durable by the writer's own periodic flush, with no Sync call and no
// rotation: README's "every record committed more than one interval plus
// a flush before the loss". Each record must be covered by a returned
// msync that began after its commit, within the interval plus the time a
// flush takes (slack for a loaded CI machine; a ticker missing, stopped,
// or running at the 1 s default fails it).
func TestSyncIntervalFlushesWithoutSync(t *testing.T) {
	const interval = 10 * time.Millisecond
	const slack = 750 * time.Millisecond // a 1 s ticker still fails: each record then waits ~1 s
	fs := &crashtest.FaultFS{}
	fl := newMsyncLog(fs)
	w, err := writer.Open(t.TempDir(), writer.Options{SegmentSize: 1 << 20, Sync: writer.SyncInterval, SyncInterval: interval, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var worst time.Duration
	for i := range 12 {
		p, err := w.Append(faultPayload(i))
		committed := time.Now() // after the commit: a lower bound would be earlier
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq != 1 {
			t.Fatalf("record %d in segment %d: a seal, not the interval, may have flushed it", i, p.Seq)
		}
		for {
			at, ok := fl.durableAt(p, committed)
			if ok {
				worst = max(worst, at.Sub(committed))
				if d := at.Sub(committed); d > interval+slack {
					t.Fatalf("record %d at %v durable %v after its commit; want within the interval %v (+%v slack)", i, p, d, interval, slack)
				}
				break
			}
			if time.Since(committed) > interval+slack {
				t.Fatalf("record %d at %v: no flush covered it %v after its commit (interval %v), no Sync called", i, p, time.Since(committed), interval)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(i%4) * 3 * time.Millisecond) // commits at various points of the interval
	}
	t.Logf("interval %v: slowest record durable %v after its commit", interval, worst)
}

// TestSyncAlwaysReturnsAfterEarlierCommitsAreDurable: README's SyncAlways
// row, "every record whose Append returned, and every record committed
// before it". X is committed and its flush held; Y, committed after X by
// another goroutine, must not come back from Append while X's flush is
// still running: Y's durability implies X's.
func TestSyncAlwaysReturnsAfterEarlierCommitsAreDurable(t *testing.T) {
	fs := &crashtest.FaultFS{}
	fl := newMsyncLog(fs)
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncAlways, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append([]byte("first")); err != nil { // learn the mapping's address
		t.Fatal(err)
	}
	var armed atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	fl.mu.Lock()
	fl.hold = func(c crashtest.Call) {
		if armed.CompareAndSwap(true, false) {
			close(held)
			<-release
		}
	}
	fl.mu.Unlock()
	armed.Store(true)
	x, y := []byte("X, committed first, its flush held"), []byte("Y, committed while X's flush runs")
	xDone := make(chan time.Time, 1)
	go func() {
		if _, err := w.Append(x); err != nil {
			t.Error(err)
		}
		xDone <- time.Now()
	}()
	<-held // X is committed: its flush began after its commit
	yDone := make(chan time.Time, 1)
	go func() {
		if _, err := w.Append(y); err != nil {
			t.Error(err)
		}
		yDone <- time.Now()
	}()
	// Y's bytes in the file (the page cache the mapping shares), then time
	// for its commit store and its Sync to start.
	seg := filepath.Join(dir, segment.FileName(1))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, y) {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatal("Y was never copied into the segment")
		}
	}
	select {
	case <-yDone:
		close(release)
		t.Fatal("Append(Y) returned while the flush covering X, committed before Y, had not returned")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-xDone
	<-yDone
}
