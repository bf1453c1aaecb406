package verify

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Verifying a log while its writer appends from several goroutines and
// rotates small segments never reports anything: frames and footers being
// stored, segments being sealed meanwhile, are all work in progress.
func TestVerifyWhileWriting(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if _, err := w.Append(fmt.Appendf(nil, "writer %d record %d", g, i)); err != nil {
					t.Error(err)
					return
				}
				if i%64 == 0 {
					time.Sleep(time.Microsecond) // let the sealer and verify in
				}
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Second)
	runs := 0
	for ; time.Now().Before(deadline) || runs < 5; runs++ {
		rep := mustDir(t, dir, Options{})
		if !rep.Logs[0].WriterAlive || rep.ExitCode(true) != ExitClean {
			stop.Store(true)
			wg.Wait()
			w.Close()
			t.Fatalf("run %d: writer alive %v, exit %d\n%s", runs, rep.Logs[0].WriterAlive, rep.ExitCode(true), summary(rep))
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustDir(t, dir, Options{})
	if rep.ExitCode(true) != ExitClean || rep.Totals.Records == 0 {
		t.Fatalf("after close: exit %d, %d records\n%s", rep.ExitCode(true), rep.Totals.Records, summary(rep))
	}
	t.Logf("%d verifications of a live log, %d records at the end", runs, rep.Totals.Records)
}

// The suspects of a live log are chosen from the current results, so that
// a recheck that finds a footer whole makes the unsealed segment before
// it a suspect in the next round (TestVerifyWhileWriting failed about
// once in 30 runs under load when they were chosen once).
func TestLiveSuspectsAfterARecheck(t *testing.T) {
	unsealed := &result{footerAbsent: true, hasEnd: true}
	storing := &result{} // its footer was being stored: damaged, not absent
	storing.found.count = map[Class]int{Footer: 1}
	active := &result{footerAbsent: true}
	results := []*result{{sealed: true}, unsealed, storing, active}
	if got := liveSuspects(results, 0); len(got) != 1 || got[0] != 2 {
		t.Fatalf("first round: suspects %v, want [2] (the damaged footer)", got)
	}
	results[2] = &result{sealed: true} // the recheck found it whole
	if got := liveSuspects(results, 0); len(got) != 1 || got[0] != 1 {
		t.Fatalf("second round: suspects %v, want [1] (unsealed before a sealed segment)", got)
	}
	results[1] = &result{sealed: true}
	if got := liveSuspects(results, 0); len(got) != 0 {
		t.Fatalf("third round: suspects %v, want none", got)
	}
}

// A live writer's open segments are work in progress, not findings.
func TestLiveWriterTail(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	a := l.open(3, true) // being sealed
	b := l.open(4, false)
	segment.StoreLength(b.img, b.offs[2], -segment.LoadLength(b.img, b.offs[2]))
	b.write(t)
	l.open(0, false) // prepared
	lk, err := segment.AcquireLock(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := mustDir(t, l.dir, Options{})
	if len(rep.Findings) != 0 || rep.ExitCode(true) != 0 {
		t.Fatalf("live log has findings:\n%s", summary(rep))
	}
	states := []State{}
	for _, s := range rep.Segments {
		states = append(states, s.State)
	}
	if want := []State{StateSealed, StateOpen, StateOpen, StatePrepared}; !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if !rep.Logs[0].WriterAlive || !rep.Segments[1].Live {
		t.Errorf("writer not seen as alive: %+v %+v", rep.Logs, rep.Segments[1])
	}
	_ = a
	// Damage in the active segment is still reported (after the recheck).
	b.img[b.offs[0]+25] ^= 1
	b.write(t)
	rep = mustDir(t, l.dir, Options{})
	if !has(rep, Torn, 3, b.offs[0]) || rep.ExitCode(false) != 1 {
		t.Errorf("torn frame in a live segment not reported:\n%s", summary(rep))
	}
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	// The writer is gone: the same tail is crash residue.
	b.img[b.offs[0]+25] ^= 1
	b.write(t)
	rep = mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitUnfinished {
		t.Errorf("dead writer's tail: exit %d, want 3\n%s", rep.ExitCode(false), summary(rep))
	}
}
