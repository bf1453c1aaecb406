package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// prepareLoop keeps the segment after the active one ready, so that a
// rotation is a pointer swap. After a failure (a full disk) it retries when
// an appender needs the segment, at most every prepRetry.
//
// Segment files are created ahead by a creator goroutine (creator.go),
// so the slow part of preparing (the fsyncs) overlaps the filling of
// segments and only the mapping is left for when a segment becomes next.
func (w *Writer) prepareLoop() {
	defer w.wg.Done()
	const prepRetry = 20 * time.Millisecond
	var lastFail time.Time
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var cr *creator // started after the first preparation, so a writer that appends a little makes no files ahead
	defer func() { w.dropAhead(cr.stopAndCollect()) }()
	for {
		select {
		case <-w.done:
			return
		case <-w.kickPrep:
		case <-retry.C:
		}
		w.bgSteps.Add(1)
		c := w.cur.Load()
		if c.next.Load() != nil || w.closingNow() || w.failed.Load() != nil {
			continue
		}
		// Backpressure: at most three segments live — one finished and
		// being sealed, the active one, the next; while sealing lags (a
		// slow disk under SyncInterval or SyncAlways) the next is not
		// prepared once a second segment is finished, so appenders wait
		// at the rotation instead of piling up dirty mapped memory. The
		// sealer kicks us when it catches up.
		if w.sealer.backlog(c) > 1 {
			continue
		}
		if wait := prepRetry - time.Since(lastFail); wait > 0 {
			retry.Reset(wait)
			continue
		}
		if err := w.settle(c); err != nil {
			// The active segment's file was truncated under the writer
			// (FORMAT.md section 12, assumption 8): an appender reaching
			// the cut would die of SIGBUS, and the segment cannot be
			// sealed whole. Failing the writer first turns that into
			// ErrFailed, naming the file, before any appender gets there.
			w.fail(err)
			continue
		}
		var nx *seg
		var err error
		a := cr.take(c.seq+1, w.done)
		if a == nil && cr != nil {
			select {
			case <-w.done:
				return // Close: the deferred dropAhead disposes of its files
			default:
			}
			// It stopped (a failed creation, which prepare below retries
			// and reports): start again from the next segment.
			w.removeAhead(cr.stopAndCollect())
			cr = nil
		}
		drop := "" // the file to remove if it cannot be made ready
		if a != nil {
			drop = a.path
			nx, err = w.mapNew(a.f, a.path, a.seq)
		} else {
			nx, err = w.prepare(c.seq + 1) // removes its own file on failure
		}
		if err == nil {
			// Populate the rest before publishing, unless appenders are
			// waiting for it: then publish it at once and go on ahead of
			// them, so that two CPUs fault its memory in instead of one
			// while the other waits (from memory the host has to back
			// anew, ~150 ms for 64 MiB on the VMs we measured, more than
			// appenders take to fill a segment).
			if err = w.fill(nx, true, c.full); err != nil {
				_ = nx.release()
				drop = nx.path
			}
		}
		if err != nil && drop != "" {
			// The creator's files after it go first (and it stops: the
			// retry prepares from this number).
			w.removeAhead(cr.stopAndCollect())
			cr = nil
			w.dropUnmappable(drop)
		}
		if errors.As(err, new(flushError)) {
			w.fail(err)
			continue
		}
		if err != nil {
			// A file truncated before it was published (its size found
			// wrong when it was mapped, or a fault while it was
			// pre-faulted) lands here too: it held no record, so, as
			// after a full disk, the file is removed, appenders that
			// need the segment get the error, and the retry makes it
			// again.
			lastFail = time.Now()
			w.prepErr.Store(&err)
			w.opts.Logger.Warn("cannot prepare the next segment", "dir", w.dir, "err", err)
			w.broadcast()
			continue
		}
		lastFail = time.Time{}
		w.prepErr.Store(nil)
		c.next.Store(nx)
		if c.full() {
			_ = w.rotate(c) // appenders are waiting for it
		}
		if err := w.fill(nx, false, nil); err != nil {
			// Published: appenders may have stored records in it already.
			// As for the active segment above.
			w.fail(err)
			continue
		}
		if cr == nil && !w.closingNow() {
			cr = w.startCreator(nx.seq + 1)
		}
	}
}

// removeUnused removes a segment file that never held a frame, after the
// writer stopped using it: the next Open continues in an earlier one.
func (w *Writer) removeUnused(path string) error {
	// By path: if the log directory was moved away, the path may now be
	// another log's, whose segment of that number must not go.
	if err := w.checkLock(); err != nil {
		return nil // the writer has failed with ErrLockLost; Close returns it
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove unused segment: %w", err)
	}
	if err := w.opts.FS.SyncDir(w.dir); err != nil {
		return fmt.Errorf("remove unused %s: %w", filepath.Base(path), segment.OpError("fsync directory", w.dir, flushError{err}))
	}
	return nil
}

func (w *Writer) closingNow() bool {
	w.rotMu.Lock()
	defer w.rotMu.Unlock()
	return w.closing
}

// sealer finishes segments in order: it waits, by reading commit words,
// until every frame up to the END frame is committed, then writes the
// footer, flushes the whole file, and unmaps and closes it.
type sealer struct {
	mu    sync.Mutex // guards queue, which the syncer reads
	queue []*seg     // unsealed segments, oldest first
	last  *seg       // the newest segment ever queued
	prev  [segment.DigestSize]byte
	idle  chan struct{} // closed when, closing, every segment is sealed
	// progress is when the sealer last moved: a frame committed anywhere
	// in a finished segment (the tally's or its lookahead's), or a
	// segment sealed or released. Close (drain) tells by it a slow disk,
	// or work still landing behind a reservation held open, from a
	// reservation nobody commits.
	progress atomic.Int64
	// inIO is set while the sealer seals or releases a segment: a flush
	// that takes longer than Close's timeout on a saturated disk is slow,
	// not a reservation nobody commits, and giving up on it would leave
	// the segment unsealed for nothing (Close waits for the sealer anyway).
	inIO atomic.Bool
	// passes counts seal passes begun; stuck is the number of the pass
	// now ending at a frame not committed in a finished segment, 0 while
	// a pass runs or after one that was not. Close gives up only on a
	// pass begun after it did: before one, or while one hashes a backlog,
	// nothing says a reservation is open, and a short CloseTimeout gave
	// up with every record committed and the segment left unsealed.
	passes, stuck atomic.Uint64
}

func (w *Writer) sealLoop() {
	defer w.wg.Done()
	// A finished segment with frames in flight is polled from minWait,
	// backing off to maxWait. The active segment is hashed every
	// hashEvery while it grows, backing off to idleEvery while it does not.
	const minWait, maxWait = 20 * time.Microsecond, 5 * time.Millisecond
	const hashEvery, idleEvery = 2 * time.Millisecond, time.Second
	wait, activeWait := minWait, hashEvery
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	lockChecked := time.Now()
	for {
		if time.Since(lockChecked) >= lockCheckEvery {
			lockChecked = time.Now()
			_ = w.checkLock() // fails the writer itself
		}
		// Read closing before the pass: once it is set no rotation can
		// happen, so a pass that starts after it sees the final segment.
		closing := w.closingNow()
		w.bgSteps.Add(1)
		w.sealer.stuck.Store(0)
		pass := w.sealer.passes.Add(1)
		st, err := w.sealPass()
		if st.pending {
			w.sealer.stuck.Store(pass)
		}
		if err != nil {
			w.fail(err)
		}
		if closing && (w.failed.Load() != nil || !st.pending && len(w.sealer.snapshot()) == 0) {
			close(w.sealer.idle)
			<-w.done
			return
		}
		switch { // after an error st says neither pending nor active
		case st.pending:
			t.Reset(wait)
			wait = min(2*wait, maxWait)
		case st.active:
			wait = minWait
			if st.moved {
				activeWait = hashEvery
			} else {
				activeWait = min(2*activeWait, idleEvery)
			}
			t.Reset(activeWait)
		default:
			wait = minWait
		}
		select {
		case <-w.done:
			return
		case <-w.kickSeal:
		case <-t.C:
		}
	}
}

// sealStretch is how much the sealer tallies before it hashes what it
// tallied: well inside a core's L2 cache.
const sealStretch = 128 << 10

// sealState is what a seal pass left behind.
type sealState struct {
	pending bool // a finished segment still has frames in flight
	active  bool // the oldest unsealed segment is the active one
	moved   bool // the pass got past at least one frame
}

// sealPass seals every finished segment it can, then tallies and hashes
// the committed prefix of the active segment, so that sealing it after the
// rotation is left with its last frames only.
func (w *Writer) sealPass() (st sealState, err error) {
	sl := &w.sealer
	sl.backlog(w.cur.Load())
	for {
		q := sl.snapshot()
		if len(q) == 0 || w.failed.Load() != nil {
			return st, nil
		}
		s := q[0]
		if s.unused.Load() {
			// Close left it empty for the next Open: released, not sealed.
			if err := sl.doIO(s.release); err != nil {
				return st, err
			}
			sl.pop()
			continue
		}
		full := s.full()
		before := s.tally.Off
		var done bool
		var f segment.Footer
		// Guarded: a segment file truncated under the writer faults
		// (SIGBUS) where its pages are gone; that fails the writer, naming
		// the file, instead of crashing the process.
		if err := segment.Guard(s.data, func() {
			if s.digest == nil {
				s.digest = segment.NewDigestStream(sl.prev)
			}
			// A stretch at a time, hashed just after the tally read it:
			// one pass over memory instead of two (the tally's pass alone
			// cost ~10 % of `auditseg write`'s CPU, most of it waiting on
			// memory).
			for {
				stop := s.tally.Off + sealStretch
				if done = s.tally.AdvanceTo(s.data, stop); done {
					break
				}
				// Committed frames never change: hashing them now is final.
				s.digest.Add(s.data, s.tally.Off)
				if s.tally.Off < stop {
					return // a frame not committed yet
				}
			}
			f = segment.TalliedFooter(s.data, s.seq, s.tally, s.digest, 0, now())
		}); err != nil {
			return st, faultErr(s, err)
		}
		if s.tally.Off != before {
			sl.progress.Store(now())
			st.moved = true
		}
		if !done {
			st.pending, st.active = full, !full
			if full {
				// The frame the tally waits at may be a reservation held
				// open while frames behind it, or in the finished
				// segments after it, are still being committed.
				ahead, err := committedAhead(q)
				if err != nil {
					return st, err
				}
				if ahead {
					sl.progress.Store(now())
				}
			}
			return st, nil
		}
		if err := sl.doIO(func() error { return w.finish(s, f) }); err != nil {
			return st, fmt.Errorf("seal: %w", err)
		}
		sl.prev = f.Digest
		sl.pop()
		kick(w.kickPrep) // the backlog shrank
	}
}

// backlog brings the queue up to the active segment c and returns how
// many finished segments in it await sealing.
func (sl *sealer) backlog(c *seg) int {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	// c may be stale: loaded before a rotation that another caller has
	// queued already. Never walk past it into a segment not active yet,
	// which the sealer would wait on until Close gave up.
	for x := sl.last; x != c && x.seq < c.seq; {
		if x = x.next.Load(); x == nil {
			break
		}
		sl.queue = append(sl.queue, x)
		sl.last = x
	}
	n := len(sl.queue)
	if n > 0 && sl.queue[n-1] == c {
		n--
	}
	return n
}

// faultErr is the error for a fault (from segment.Guard) in any of the
// sealer's reads of s or in its footer store (seal), so that each names
// it alike, and as every reader of segments does (segment.ChangedError):
// the file, and the offset that had no data.
func faultErr(s *seg, err error) error {
	return segment.Changed(s.path, "being sealed", err)
}

// doIO runs a seal or release, marked as I/O for drain. Progress is
// stamped before the mark is cleared, so drain never sees the mark gone
// and the stamp from before a long flush.
func (sl *sealer) doIO(f func() error) error {
	sl.inIO.Store(true)
	err := f()
	sl.progress.Store(now())
	sl.inIO.Store(false)
	return err
}

// pop drops the oldest segment from the queue, done with.
func (sl *sealer) pop() {
	sl.mu.Lock()
	sl.queue = sl.queue[1:]
	sl.mu.Unlock()
	sl.progress.Store(now())
}

func (sl *sealer) snapshot() []*seg {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return append([]*seg(nil), sl.queue...)
}

// drain waits for the sealer to seal everything after Close made the
// active segment full. It waits as long as the sealer makes progress
// (see sealer.progress) or is flushing, and gives up after timeout
// without either once a pass begun after the call found a frame not
// committed: a reservation nobody commits, and nothing committed behind
// it either.
func (sl *sealer) drain(w *Writer, timeout time.Duration) error {
	kick(w.kickSeal)
	sl.progress.Store(now())
	begun := sl.passes.Load()
	// Polled, not woken: at most every millisecond, as a ticker of a
	// shorter CloseTimeout's period spins a core for as long as Close
	// waits (a slow flush, a backlog being hashed).
	t := time.NewTicker(min(max(timeout, time.Millisecond), 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-sl.idle:
			return nil
		case <-t.C:
			if sl.inIO.Load() {
				sl.progress.Store(now())
			} else if sl.stuck.Load() > begun && time.Duration(now()-sl.progress.Load()) > timeout {
				return fmt.Errorf("%s: %w: no frame committed for %v; the segment stays unsealed until the next Open recovers it",
					w.dir, ErrReservationsOpen, timeout)
			}
		}
	}
}

// writeAheadLoop starts the writeback of the filled part of the active
// segment while writers are still filling it (SyncInterval, SyncAlways).
// Sealing must fsync the whole segment before the next-but-one segment can
// be prepared; started only then, the writeback left the disk idle while
// the segment filled and then made writers wait for it at the rotation
// after. It writes whole 2 MiB stretches below the tail (whole folios where
// the segment is mapped in 2 MiB pages, pages.go), which writers no
// longer touch, so the write-protection writeback needs costs no fault. It
// promises nothing: durability still comes from msync and fsync.
func (w *Writer) writeAheadLoop() {
	defer w.wg.Done()
	// While nothing is appended the period doubles up to idleEvery, so an
	// idle writer wakes once a second instead of a hundred times.
	const every, idleEvery, chunk = 10 * time.Millisecond, time.Second, 8 << 20
	t := time.NewTimer(every)
	defer t.Stop()
	wait := every
	start := startRange(w.opts.FS)
	var s *seg
	var from, seen int64
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		}
		if c := w.cur.Load(); c != s {
			s, from, seen = c, 0, 0
		}
		tail := s.tail.Load()
		if tail == seen {
			wait = min(2*wait, idleEvery)
		} else {
			wait = every
		}
		seen = tail
		t.Reset(wait)
		upto := min(tail, s.dataLimit) &^ (2<<20 - 1)
		if upto-from < chunk {
			continue
		}
		s.mapMu.Lock()
		if !s.unmapped {
			_ = start(s.f, from, upto-from) // advice only
		}
		s.mapMu.Unlock()
		from = upto
	}
}

// intervalLoop flushes every SyncInterval (SyncInterval mode).
func (w *Writer) intervalLoop() {
	defer w.wg.Done()
	t := time.NewTicker(w.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			if err := w.Sync(); err != nil && !errors.Is(err, ErrClosed) {
				w.opts.Logger.Error("interval sync failed", "dir", w.dir, "err", err)
			}
		}
	}
}
