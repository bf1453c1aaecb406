package writer

import (
	"cmp"
	"errors"
	"os"
	"slices"
)

// Creating segment files ahead.
//
// Creating a segment file (create: reserved, header written, fsynced,
// renamed, the directory fsynced) took 21-69 ms in a run of 64-byte
// appends, nearly all of it the two fsyncs waiting behind the writeback
// of sealed segments, while a 64 MiB segment filled in ~45 ms. Done by the
// preparer right after it mapped the next segment, a slow creation kept
// it from mapping the one after that in time, and appenders waited 16-33
// ms at rotations. So a creator goroutine makes the files, in sequence,
// up to two ahead of the one the preparer maps next (one handed over, one
// made and waiting to be), and the preparer only maps them. A created
// file is not live: it holds disk, reserved in full, but no memory.
//
// At Close, of the files made and not mapped, the first stays if no
// prepared segment before it went unused (the next Open continues in it);
// every other one is removed, newest first, so the files left are always
// consecutive.

// created is a segment file create made and nobody has mapped yet.
type created struct {
	seq  uint64
	f    *os.File
	path string
}

// creator is the goroutine that makes segment files ahead.
type creator struct {
	out  chan *created // files made, in order
	stop chan struct{}
	done chan struct{} // closed when the goroutine has returned
	held *created      // made, not handed over when it stopped (read after done)
	// stray is a file take got that was not the one asked for (the
	// preparer's goroutine only).
	stray *created
}

// startCreator starts making segment files from seq on.
func (w *Writer) startCreator(seq uint64) *creator {
	cr := &creator{out: make(chan *created, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(cr.done)
		for ; ; seq++ {
			select {
			case <-cr.stop:
				return
			default:
			}
			if w.closingNow() || w.failed.Load() != nil {
				return
			}
			f, path, err := w.create(seq)
			if errors.As(err, new(flushError)) {
				w.fail(err)
				return
			}
			if err != nil {
				// The preparer makes this one itself when it is needed,
				// retrying and reporting as it does, then starts a creator
				// again.
				w.opts.Logger.Warn("cannot create a segment ahead", "dir", w.dir, "err", err)
				return
			}
			a := &created{seq: seq, f: f, path: path}
			select {
			case cr.out <- a:
			case <-cr.stop:
				cr.held = a
				return
			}
		}
	}()
	return cr
}

// take returns the file for segment seq, waiting while it is being made,
// or nil if the creator is nil, stopped without it, or made another (which
// then goes back for stopAndCollect), or abort is closed.
func (cr *creator) take(seq uint64, abort <-chan struct{}) *created {
	if cr == nil {
		return nil
	}
	var a *created
	select {
	case a = <-cr.out:
	case <-cr.done:
		select {
		case a = <-cr.out: // made just before it stopped
		default:
			return nil
		}
	case <-abort:
		return nil
	}
	if a.seq != seq {
		// Not expected: files are made in the order they are mapped.
		cr.stray = a
		return nil
	}
	return a
}

// stopAndCollect stops the creator and returns the files it made that
// were not taken, in sequence order. A nil creator has none.
func (cr *creator) stopAndCollect() []*created {
	if cr == nil {
		return nil
	}
	close(cr.stop)
	<-cr.done
	var as []*created
	for {
		select {
		case a := <-cr.out:
			as = append(as, a)
			continue
		default:
		}
		break
	}
	for _, a := range []*created{cr.held, cr.stray} {
		if a != nil {
			as = append(as, a)
		}
	}
	slices.SortFunc(as, func(a, b *created) int { return cmp.Compare(a.seq, b.seq) })
	return as
}

// dropAhead disposes of the files made ahead and not mapped when the
// preparer stops, as the comment at the top of this file says.
func (w *Writer) dropAhead(as []*created) { w.disposeAhead(as, true) }

// removeAhead removes every file made ahead and not mapped: the preparer
// makes the next segment itself after its creator stopped, and a new
// creator makes the ones after it again.
func (w *Writer) removeAhead(as []*created) { w.disposeAhead(as, false) }

func (w *Writer) disposeAhead(as []*created, keepFirst bool) {
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		a.f.Close()
		if c := w.cur.Load(); keepFirst && i == 0 && !c.unused.Load() && (c.next.Load() == nil || c.next.Load().seq >= a.seq) {
			continue // nothing unused before it: the next Open continues in it
		}
		if err := w.removeUnused(a.path); errors.As(err, new(flushError)) {
			w.fail(err) // a failed directory fsync is sticky, as any flush: Close returns it
		} else if err != nil {
			w.opts.Logger.Warn("remove an unused segment", "dir", w.dir, "err", err)
		}
	}
}
