package writer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// Close against work in flight: reservations Close gives up on, slow
// seals, commits racing Close.

// A reservation left open past Close's timeout is not committed afterwards:
// the directory is released and another writer may recover that segment.
// Nor do late writes into its Bytes reach the file: the next writer
// recovers and seals it, and a write after that would break its digest.
func TestCommitAfterCloseTimeout(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(3)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Bytes(), "abc")
	if err := w.Close(); !errors.Is(err, ErrReservationsOpen) {
		t.Fatalf("close with an open reservation: %v", err)
	}
	copy(r.Bytes(), "XYZ") // a slow filler, after Close gave up
	if err := r.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
	if f := frameInFile(t, &r); f.State != segment.Reserved {
		t.Fatalf("frame after a refused commit: %v", f.State)
	}
	// The next writer recovers the segment: the reservation becomes PAD.
	w2, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if st := w2.Recovered(); st.RecoveredSegments != 1 || st.RecoveredFrames != 1 {
		t.Fatalf("recovery %+v", st)
	}
	copy(r.Bytes(), "late") // into the segment w2 has sealed
	w2.Close()
	if got := readAll(t, dir); len(got) != 0 {
		t.Fatalf("records %q", got)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, l.Segments[:1])
	if b, _ := os.ReadFile(r.s.path); bytes.Contains(b, []byte("XYZ")) || bytes.Contains(b, []byte("late")) {
		t.Fatal("writes after Close gave up reached the segment file")
	}
}

// slowFsyncFS makes every fsync take delay once armed: a saturated disk.
type slowFsyncFS struct {
	osFS
	armed atomic.Bool
	delay time.Duration
}

func (s *slowFsyncFS) Fsync(f *os.File) error {
	if s.armed.Load() {
		time.Sleep(s.delay)
	}
	return s.osFS.Fsync(f)
}

// A seal whose flush takes longer than CloseTimeout is a slow disk, not a
// reservation nobody commits: Close waits for it and seals the segment.
func TestCloseWaitsForSlowSeal(t *testing.T) {
	dir := t.TempDir()
	fs := &slowFsyncFS{delay: 400 * time.Millisecond}
	w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: 50 * time.Millisecond, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := w.Append([]byte("slow disk"))
	if err != nil {
		t.Fatal(err)
	}
	fs.armed.Store(true)
	if err := w.Close(); err != nil {
		t.Fatalf("close over a slow flush: %v", err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, l.Segments[:1])
	if got := readAll(t, dir); len(got) != 1 || string(got[pos]) != "slow disk" {
		t.Fatalf("records %q", got)
	}
}

// With SyncAlways, an Append or Commit whose record was committed before a
// concurrent Close claimed the rest of the segment is sealed durably by
// that Close: it must report success, not ErrClosed (a caller retrying on
// the error would write the record twice). Found by a review: 3-4 such
// records in 20 rounds before the fix.
func TestSyncAlwaysCommitRacingClose(t *testing.T) {
	wrong := 0
	for range 30 {
		dir := t.TempDir()
		w, err := Open(dir, Options{SegmentSize: 64 << 10, Sync: SyncAlways})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		failed := map[Position][]byte{}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					rec := fmt.Appendf(nil, "g%d-i%d", g, i)
					var p Position
					var err error
					if i%2 == 0 {
						p, err = w.Append(rec)
					} else if r, rerr := w.Reserve(len(rec)); rerr != nil {
						err = rerr
					} else {
						copy(r.Bytes(), rec)
						p, err = r.Position(), r.Commit()
					}
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Error(err)
						}
						mu.Lock()
						failed[p] = rec
						mu.Unlock()
						return
					}
				}
			}()
		}
		time.Sleep(5 * time.Millisecond)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		got := readAll(t, dir)
		for p, rec := range failed {
			if bytes.Equal(got[p], rec) {
				wrong++
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d records committed and sealed were reported as failed (ErrClosed)", wrong)
	}
}

// An Append whose commit meets a segment a giving-up Close cut off its
// file reports that its record may be lost; one that returns nil has its
// record in the log after the next Open's recovery (found by a review of
// the detach: a 32 MiB Append racing such a Close returned nil and the
// record was not in the log).
func TestAppendRacingGiveUpClose(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 24<<20)
	for i := range 8 {
		dir := t.TempDir()
		w, err := Open(dir, Options{SegmentSize: 32 << 20, MaxRecordSize: 24 << 20, CloseTimeout: time.Millisecond, Sync: SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.Reserve(10) // never finished: Close gives up on it
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			pos Position
			err error
		}
		done := make(chan res)
		go func() {
			p, err := w.Append(big)
			done <- res{p, err}
		}()
		time.Sleep(time.Duration(i%4) * 500 * time.Microsecond)
		if err := w.Close(); !errors.Is(err, ErrReservationsOpen) {
			t.Fatalf("Close: %v", err)
		}
		a := <-done
		_ = r.Abort()
		if a.err != nil {
			continue // reported: nothing promised
		}
		if got := readAll(t, reopened(t, dir)); !bytes.Equal(got[a.pos], big) {
			t.Fatalf("round %d: Append returned %v, nil, but its record is not in the log", i, a.pos)
		}
	}
}

// reopened recovers the log in dir with a new writer and closes it.
func reopened(t *testing.T, dir string) string {
	t.Helper()
	w, err := Open(dir, Options{SegmentSize: 32 << 20, MaxRecordSize: 24 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMaybeLostIsDistinct: a commit that met a segment Close gave up on
// may be in the log; a refused one is not. Both wrap ErrClosed (the
// writer is closed either way); only the first wraps ErrMaybeLost, which
// is how a caller (and TestSoak) tells them apart.
func TestMaybeLostIsDistinct(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	maybe := w.committedAsClosed(Position{Seq: 1, Offset: 64})
	if !errors.Is(maybe, ErrClosed) || !errors.Is(maybe, ErrMaybeLost) || !strings.Contains(maybe.Error(), w.Dir()) {
		t.Fatalf("committed as Close gave up: %v", maybe)
	}
	if refused := w.closedErr(); !errors.Is(refused, ErrClosed) || errors.Is(refused, ErrMaybeLost) {
		t.Fatalf("refused: %v", refused)
	}
}

// A Sync (flushAll) or seal pass brings the sealer's queue up to the
// active segment it loaded before taking the sealer's lock. If a rotation
// came in between, and another caller has queued the new active segment
// C and the preparer has mapped C's successor, the stale call must not
// queue that successor: the sealer would wait on it as if it were
// finished, and Close would give up with ErrReservationsOpen though no
// reservation was ever made (found by a review).
func TestStaleBacklogStopsAtTheActiveSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10, Sync: SyncNone, CloseTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stale := w.cur.Load() // what flushAll's w.cur.Load() returned
	for {
		pos, err := w.Append(make([]byte, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if pos.Seq != stale.seq {
			break
		}
	}
	c := w.cur.Load()
	deadline := time.Now().Add(5 * time.Second)
	for c.next.Load() == nil { // the preparer maps C's successor
		if time.Now().After(deadline) {
			t.Fatal("next segment never prepared")
		}
		time.Sleep(time.Millisecond)
	}
	w.sealer.backlog(c)     // the sealer (or another Sync) catches up with the rotation
	w.sealer.backlog(stale) // the Sync that loaded cur before it gets the lock
	w.sealer.mu.Lock()
	last := w.sealer.last
	w.sealer.mu.Unlock()
	if last.seq > w.cur.Load().seq {
		t.Errorf("sealer queued segment %d, but the active segment is %d", last.seq, w.cur.Load().seq)
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatalf("Close after %v: %v (no reservation was ever made)", time.Since(start).Round(time.Millisecond), err)
	}
}

// Frames committed behind a reservation held open are progress: Close
// keeps waiting while they land, longer than CloseTimeout in all, and
// seals once the held one is committed; whether they are in its segment
// or in the one after it, which Close waits to seal too. Only the first
// frame not committed used to count, so Close gave up after CloseTimeout
// with commits still landing behind it.
func TestCloseWaitsWhileFramesCommitBehindOpenReservation(t *testing.T) {
	for _, later := range []bool{false, true} {
		t.Run(map[bool]string{false: "same segment", true: "next segment"}[later], func(t *testing.T) {
			t.Parallel() // each mostly waits for the sealer, for two timeouts
			closeWhileCommittingBehind(t, later)
		})
	}
}

func closeWhileCommittingBehind(t *testing.T, nextSegment bool) {
	// The commits go on for two timeouts: Close without the fix gives up
	// after one, midway. Each commit waits for the sealer to have counted
	// the one before it (its progress stamp moved), so the commits are
	// paced by the sealer's polls (at most 5 ms apart), not by sleeps, and
	// every one is shown to be progress. What the test cannot rule out is
	// a stall of the sealer, or of this goroutine, for the whole timeout:
	// Close is right to give up then (the failure says how long the
	// longest step took).
	const timeout = 2 * time.Second // 1 s passed 20 of 20 alone; CI runs every package at once
	const commitFor = 2 * timeout
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	held, err := w.Reserve(4)
	if err != nil {
		t.Fatal(err)
	}
	copy(held.Bytes(), "held")
	records := 1
	for nextSegment && w.cur.Load() == held.s {
		if _, err := w.Append(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		records++
	}
	// More than the sealer's polls that fit in the time the commits go
	// on (a pass every 5 ms at most while a frame is pending: 800).
	behind := make([]Reservation, 1000)
	for i := range behind {
		if behind[i], err = w.Reserve(8); err != nil {
			t.Fatal(err)
		}
		copy(behind[i].Bytes(), fmt.Sprintf("r%07d", i))
	}
	if (behind[len(behind)-1].s != held.s) != nextSegment {
		t.Fatalf("the reservations behind are in segment %d, the held one in %d", behind[len(behind)-1].s.seq, held.s.seq)
	}
	records += len(behind)
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	for !w.closingNow() {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	// Until a pass begun now has found the held frame pending: from then
	// on only the commits below move the progress stamp (drain stamps it
	// as it begins, and a segment's first lookahead counts frames
	// committed before it as new).
	for p := w.sealer.passes.Load(); w.sealer.stuck.Load() <= p; {
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v before the sealer found the held frame pending", err)
		case <-time.After(100 * time.Microsecond):
		}
	}
	last, longest := time.Now(), time.Duration(0)
	i := 0
	for ; i < len(behind) && time.Since(start) < commitFor; i++ {
		before := w.sealer.progress.Load()
		if err := behind[i].Commit(); err != nil {
			t.Fatalf("commit %d, %v after Close began: %v; Close: %v (longest step between commits %v)",
				i, time.Since(start).Round(time.Millisecond), err, <-closed, longest.Round(time.Millisecond))
		}
		// Counted: the sealer stamps progress when it finds a frame
		// committed, and nothing else moves it while the held one blocks
		// the seal.
		for w.sealer.progress.Load() == before {
			select {
			case err := <-closed:
				t.Fatalf("Close returned %v, %v after it began, with commit %d not counted as progress (longest step between commits %v)",
					err, time.Since(start).Round(time.Millisecond), i, longest.Round(time.Millisecond))
			case <-time.After(100 * time.Microsecond):
			}
		}
		longest, last = max(longest, time.Since(last)), time.Now()
	}
	if time.Since(start) < commitFor {
		t.Fatalf("all %d reservations behind committed and counted within %v: the sealer polled faster than the test assumed", i, time.Since(start).Round(time.Millisecond))
	}
	for ; i < len(behind); i++ {
		if err := behind[i].Commit(); err != nil {
			t.Fatalf("commit %d: %v; Close: %v", i, err, <-closed)
		}
	}
	if err := held.Commit(); err != nil {
		t.Fatalf("held reservation: %v; Close: %v", err, <-closed)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkChain(t, l.Segments[:int(behind[0].s.seq)])
	if got := readAll(t, dir); len(got) != records || string(got[held.Position()]) != "held" {
		t.Fatalf("%d records (want %d), held %q", len(got), records, got[held.Position()])
	}
}

// Frames committed behind a held reservation before Close are not
// progress for Close: with nothing committed after it began, Close gives
// up after CloseTimeout, however many such frames there are. (A timeout
// far longer than the sealer's polls, which a loaded machine can delay by
// tens of milliseconds: a shorter one would also pass with every poll
// counting those frames again.)
func TestCloseGivesUpWithFramesCommittedBeforeIt(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, CloseTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	held, err := w.Reserve(4)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := w.Append([]byte("before close")); err != nil {
			t.Fatal(err)
		}
	}
	err = testfs.WithinAMinute(t, "Close still waiting a minute later, though nothing was committed after it began", w.Close)
	if !errors.Is(err, ErrReservationsOpen) {
		t.Fatalf("Close with a reservation nobody commits: %v", err)
	}
	if err := held.Abort(); !errors.Is(err, ErrClosed) {
		t.Fatalf("abort after Close gave up: %v", err)
	}
}

// CloseTimeout bounds the wait for reservations still open; with none open
// there is nothing to give up on, however short it is. Close used to time
// the sealer's first pass too: with CloseTimeout below a scheduler delay
// (1ns here; 1ms on a loaded machine, or any value under the hashing of a
// large unhashed backlog) it returned ErrReservationsOpen with every record
// committed and left the segment unsealed.
func TestCloseShortTimeoutNothingOpen(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		r, err := w.Reserve(4)
		if err != nil {
			t.Fatal(err)
		}
		copy(r.Bytes(), "done")
		if err := r.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("round %d: Close with no reservation open: %v", round, err)
		}
		l, err := segment.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkChain(t, l.Segments[:1])
	}
}

// Close polls the sealer every CloseTimeout, up to 100 ms: with a
// CloseTimeout below a millisecond that was a ticker of that period, a
// core spent spinning for as long as Close waited (for a slow seal's
// flush, or since b6d7e22 for the sealer's first pass or the hashing of
// a backlog). Measured: 1ns ticked ~4 million times a second. The poll
// is at most once a millisecond; the flush below takes 600 ms, of which
// Close spent about as much CPU time spinning. What is measured is the
// CPU time of the thread Close runs on, locked to it: the process's
// (the garbage collector, -race, the sealer's own work) is not Close's
// polling, and on a loaded machine it ate most of the budget.
func TestCloseShortTimeoutDoesNotSpin(t *testing.T) {
	dir := t.TempDir()
	fs := &slowFsyncFS{delay: 600 * time.Millisecond}
	w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: time.Nanosecond, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte("slow disk")); err != nil {
		t.Fatal(err)
	}
	// Close's goroutine alone runs on this thread while it is locked, and
	// polling in Close runs on Close's goroutine (the flush is the
	// sealer's).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fs.armed.Store(true)
	cpu0, start := threadCPUTime(t), time.Now()
	err = w.Close()
	wall, cpu := time.Since(start), threadCPUTime(t)-cpu0
	if err != nil {
		t.Fatalf("close over a slow flush: %v", err)
	}
	if wall < fs.delay || cpu > fs.delay/10 {
		t.Fatalf("Close took %v, %v of its thread's CPU time; want at least %v, and at most a tenth of it spent", wall, cpu, fs.delay)
	}
}

// threadCPUTime is the CPU time the calling thread has used, user and
// system.
func threadCPUTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
