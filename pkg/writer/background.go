package writer

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// prepareLoop keeps the segment after the active one ready, so that a
// rotation is a pointer swap. After a failure (a full disk) it retries when
// an appender needs the segment, at most every prepRetry.
func (w *Writer) prepareLoop() {
	defer w.wg.Done()
	const prepRetry = 20 * time.Millisecond
	var lastFail time.Time
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-w.kickPrep:
		case <-retry.C:
		}
		c := w.cur.Load()
		if c.next.Load() != nil || w.closingNow() {
			continue
		}
		if wait := prepRetry - time.Since(lastFail); wait > 0 {
			retry.Reset(wait)
			continue
		}
		nx, err := w.prepare(c.seq + 1)
		if err != nil {
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
	}
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
}

func (w *Writer) sealLoop() {
	defer w.wg.Done()
	const minWait, maxWait = 20 * time.Microsecond, 5 * time.Millisecond
	wait := minWait
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		// Read closing before the pass: once it is set no rotation can
		// happen, so a pass that starts after it sees the final segment.
		closing := w.closingNow()
		pending, err := w.sealPass()
		if err != nil {
			w.fail(err)
		}
		if closing && (w.failed.Load() != nil || !pending && len(w.sealer.snapshot()) == 0) {
			close(w.sealer.idle)
			<-w.done
			return
		}
		if pending && err == nil {
			t.Reset(wait)
			wait = min(2*wait, maxWait)
		} else {
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

// sealPass seals every finished segment it can. pending is true when a
// finished segment still has frames in flight.
func (w *Writer) sealPass() (pending bool, err error) {
	sl := &w.sealer
	sl.mu.Lock()
	c := w.cur.Load()
	for x := sl.last; x != c; {
		if x = x.next.Load(); x == nil {
			break
		}
		sl.queue = append(sl.queue, x)
		sl.last = x
	}
	sl.mu.Unlock()
	for {
		q := sl.snapshot()
		if len(q) == 0 || w.failed.Load() != nil {
			return false, nil
		}
		s := q[0]
		if !s.full() || !s.tally.Advance(s.data) {
			return s.full(), nil
		}
		f := segment.SealTallied(s.data, s.seq, s.tally, sl.prev, 0, now())
		if err := w.flush(s, int64(len(s.data))); err != nil {
			return false, fmt.Errorf("seal: %w", err)
		}
		sl.prev = f.Digest
		sl.mu.Lock()
		sl.queue = sl.queue[1:]
		sl.mu.Unlock()
		if err := s.release(); err != nil {
			w.opts.Logger.Warn("release sealed segment", "err", err)
		}
	}
}

func (sl *sealer) snapshot() []*seg {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return append([]*seg(nil), sl.queue...)
}

// drain waits for the sealer to seal everything after Close made the
// active segment full.
func (sl *sealer) drain(w *Writer, timeout time.Duration) error {
	kick(w.kickSeal)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-sl.idle:
		return nil
	case <-t.C:
		return fmt.Errorf("%s: %w after %v; the segment stays unsealed until the next Open recovers it", w.dir, ErrReservationsOpen, timeout)
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
