package writer

import (
	"fmt"
	"os"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// Recycling the memory of sealed segments.
//
// Every new segment is populated: each of its pages gets memory from the
// kernel. On the VMs we measured, memory that has sat free even briefly
// is returned to the host (free page reporting), and populating a 64 MiB
// segment from it costs ~150 ms (~10 µs per 4 KiB page) against ~9 ms for
// memory freed a moment before; that, not the append path, bounded
// sustained throughput. So unless KeepCache, the writer keeps sealed
// segments whose pages are clean (written back) in a small queue, and the
// preparer drops the oldest one's pages (FADV_DONTNEED) immediately before
// it populates the next segment, which then takes the memory just freed.
// Pages another process has mapped (a following reader) stay.
//
// Under SyncInterval and SyncAlways the seal leaves a segment clean. Under
// SyncNone its pages are dirty, so the dropper goroutine first writes each
// back, waiting, on its own goroutine: starting writeback blocks while the
// disk queue is full, which here delays only the recycling, never an
// appender. It promises no durability (Sync does that, with an fsync); a
// writeback error fails the writer, as a failed fsync does. When the disk is slower than the appenders, the queues
// fill and later segments simply stay in the page cache.

// maxRecycle bounds each queue of sealed segments (open files).
const maxRecycle = 4

// recycle hands the file of a sealed segment to the recycler and reports
// whether it took it (and will close it).
func (w *Writer) recycle(f *os.File, clean bool) bool {
	q := w.clean
	if !clean {
		q = w.drops
	}
	if q == nil {
		return false
	}
	select {
	case q <- f:
		return true
	default:
		return false
	}
}

// freeForNext drops the pages of the oldest clean sealed segment, if any,
// so that the segment about to be populated reuses that memory.
func (w *Writer) freeForNext() {
	select {
	case f := <-w.clean: // nil channel (KeepCache): never ready
		dropPages(f)
	default:
	}
}

func dropPages(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // advice only
	f.Close()
}

// dropLoop writes back sealed segments under SyncNone and passes them on
// as clean. Close stops it after the file in hand.
func (w *Writer) dropLoop() {
	defer w.wg.Done()
	for {
		select {
		case f := <-w.drops:
			w.lazy.wb.Lock()
			err := writeBack(syncRange(w.opts.FS), f)
			if err != nil {
				// Sticky, as a failed fsync is: the kernel may have marked
				// the pages clean, and having reported the error to us, a
				// later Sync's fsync of this file would not see it and
				// would claim durability for records that are not there.
				w.fail(err)
			}
			w.lazy.wb.Unlock()
			if err != nil {
				f.Close()
			} else if !w.recycle(f, true) {
				dropPages(f) // the queue is full: nothing will populate soon
			}
		case <-w.done:
			return
		}
	}
}

// drainRecycler drops what is still queued; Close calls it once the
// background goroutines have stopped.
func (w *Writer) drainRecycler() {
	for _, q := range []chan *os.File{w.drops, w.clean} {
		for q != nil {
			select {
			case f := <-q:
				dropPages(f)
				continue
			default:
			}
			break
		}
	}
}

// writeBack writes the file's dirty pages back and waits, a few MiB at a
// time: a whole segment submitted at once queues ~64 ms of writes at the
// disk, and the header fsync of the segment being prepared waits behind
// them (we measured 25–140 ms from fsync to mapped in prepare with
// whole-file writeback, 25–100 ms with 4 MiB chunks: a small gain, noisy).
func writeBack(syncRange func(*os.File, int64, int64) error, f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return segment.OpError("write back sealed", f.Name(), err)
	}
	size := st.Size()
	const chunk = 4 << 20
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		if err := syncRange(f, off, n); err != nil {
			return fmt.Errorf("write back sealed %s [%d, %d): %w", f.Name(), off, off+n, err)
		}
	}
	return nil
}
