package writer

import (
	"sync"

	"github.com/auditseg/auditseg/pkg/segment"
)

// syncer implements group commit: concurrent Sync calls share one flush.
// Each caller takes a ticket; a flush started after ticket t was issued
// covers every record committed before t, so one flush completes every
// ticket issued before it began.
type syncer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	issued  uint64
	done    uint64
	running bool
}

func (sy *syncer) init(w *Writer) { sy.cond = sync.NewCond(&sy.mu) }

// Sync returns once every record committed before the call is durable on
// disk. A flush failure is sticky: this and every later call (Append
// included) return it, because the kernel may have dropped the pages that
// failed to write and retrying would claim durability falsely.
func (w *Writer) Sync() error {
	if e := w.failed.Load(); e != nil {
		return *e
	}
	sy := &w.syncer
	sy.mu.Lock()
	sy.issued++
	ticket := sy.issued
	for sy.done < ticket && w.failed.Load() == nil {
		if sy.running {
			sy.cond.Wait()
			continue
		}
		sy.running = true
		cover := sy.issued
		sy.mu.Unlock()
		err := w.flushAll()
		sy.mu.Lock()
		sy.running = false
		if err != nil {
			w.fail(err)
		}
		sy.done = cover
		sy.cond.Broadcast()
	}
	sy.mu.Unlock()
	if e := w.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// flushAll flushes the committed part of every segment not yet sealed
// (sealing flushes the whole file itself).
func (w *Writer) flushAll() error {
	// Queue the segments rotated in since the sealer last looked: records
	// committed in them before this Sync must be flushed now, not when the
	// sealer gets round to it.
	w.sealer.backlog(w.cur.Load())
	for _, s := range w.sealer.snapshot() {
		upto := min(s.tail.Load(), segment.RecordLimit(int64(len(s.data))))
		if err := w.flush(s, upto); err != nil {
			return err
		}
	}
	return nil
}
