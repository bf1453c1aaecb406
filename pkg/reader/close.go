package reader

import "sync"

// Closing a reader, from its own goroutine or from another one while it
// waits.
//
// Only Wait may be running when Close is called from another goroutine:
// it is not per record, so it can afford a mutex to say it runs, where
// Next, on the replay path, cannot. A Close that finds a Wait in progress
// closes stop, which wakes the Wait's sleep, and waits for the Wait to
// release the segments on its way out, returning what releasing them
// gave: once it returns, the reader holds nothing. Unless code of the
// caller's runs for the reader then (calls): a Close from a callback
// (OnDamage, Bulk.Write) leaves the segments to the Next or Wait that
// called it, as the decoder still uses them, and one from another
// goroutine does likewise rather than wait, as that code may be waiting
// for Close's caller (Bulk.Append, on the workers of a bulk run, too).
// Releasing happens under the mutex and once: a second Close returns nil,
// after the release if the first one waited for it or did it.

// closer is a Reader's closing state.
type closer struct {
	mu      sync.Mutex
	closed  bool          // Close was called
	waiting bool          // a Wait is in progress
	stop    chan struct{} // closed by the first Close
	// calls counts what is running code of the caller's for the reader:
	// a callback, or a bulk run (enter, leave).
	calls int
	// left is made by a Close that waits for the Wait in progress, and
	// closed by that Wait once it has released the segments, err being
	// what releasing them returned.
	left chan struct{}
	err  error
}

// Close releases the segments the reader holds, and stops it: Next
// returns false, Err and Wait return ErrClosed (Err keeps an error that
// stopped the reader before). Payloads returned before are invalid after
// it. Calling it again returns nil.
//
// Call it from the reader's goroutine; stop a follower from another one
// by cancelling Wait's context. A Close from another goroutine that lands
// while Wait blocks (or All waits for a record) wakes that Wait, which
// returns ErrClosed and releases the segments as it returns, and returns
// once they are released, with the error releasing them gave. If the
// Wait is running a callback (OnDamage, Bulk.Write) or a bulk run (whose
// workers call Bulk.Append) at that moment, Close returns at once
// instead, as that code may wait for Close's caller, and the Wait
// releases the segments as it returns, an error from that unseen. Once
// that Close has returned OnDamage and Bulk.Write are not called again
// (Bulk.Append may be, on the ranges the bulk workers hold). One that
// lands while the goroutine is in Next or reads a Payload is a data race
// that can crash the process (see Closing in the package documentation).
// Called from Options.OnDamage or Bulk.Write, it stops the reader there,
// as Strict does: no more records, reports or writes; the Next or Wait
// that called it returns false or ErrClosed and releases the segments as
// it returns.
func (r *Reader) Close() error {
	r.cl.mu.Lock()
	first := !r.cl.closed
	if first {
		r.cl.closed = true
		if r.cl.stop != nil { // nil in a Reader the package's tests build
			close(r.cl.stop)
		}
	}
	switch {
	case r.cl.calls > 0:
		r.cl.mu.Unlock()
		return nil
	case r.cl.waiting && !r.released:
		// Released, there is nothing to wait for: a later Wait only
		// returns ErrClosed, and one waited for would write r.cl.err
		// while the first Close may still read it.
		if r.cl.left == nil {
			r.cl.left = make(chan struct{})
		}
		left := r.cl.left
		r.cl.mu.Unlock()
		<-left
		if !first {
			return nil
		}
		return r.cl.err
	}
	defer r.cl.mu.Unlock()
	return r.release()
}

// enter marks code of the caller's about to run for the reader (see
// closer), unless Close was called: then it makes the reader stop as
// after a Close from a callback, and reports false. Under the mutex, so
// that a Close from another goroutine either sees the mark or comes
// first and is seen here: it never waits for a Wait that then calls the
// caller's code.
func (r *Reader) enter() bool {
	r.cl.mu.Lock()
	closed := r.cl.closed
	if !closed {
		r.cl.calls++
	}
	r.cl.mu.Unlock()
	if closed {
		r.stopForClose()
	}
	return !closed
}

// leave unmarks what enter marked; deferred, so that a callback that
// panics is unmarked too (a caller that recovers can still Close).
func (r *Reader) leave() {
	r.cl.mu.Lock()
	r.cl.calls--
	r.cl.mu.Unlock()
}

// closing reports whether Close was called: without the mutex, as the
// bulk path asks once per Write.
func (r *Reader) closing() bool {
	select {
	case <-r.cl.stop:
		return true
	default:
		return false
	}
}

// startWait marks a Wait in progress.
func (r *Reader) startWait() {
	r.cl.mu.Lock()
	r.cl.waiting = true
	r.cl.mu.Unlock()
}

// endWait unmarks it, releasing the segments if Close was called (for
// the Close that waits for it, if one does), and reports whether it was.
func (r *Reader) endWait() bool {
	r.cl.mu.Lock()
	defer r.cl.mu.Unlock()
	r.cl.waiting = false
	if !r.cl.closed {
		return false
	}
	err := r.release()
	if r.cl.left != nil { // a Close waits for this
		r.cl.err = err
		close(r.cl.left)
		r.cl.left = nil
	}
	return true
}

// stopForClose makes the reader stop as Strict does after a callback that
// called Close (or during which another goroutine did, in Wait): the
// decoder checks err, and Next releases the segments once it returns.
func (r *Reader) stopForClose() bool {
	if !r.closing() {
		return false
	}
	r.closeLater = true
	r.stop(ErrClosed)
	return true
}

// release does Close's work, once; the caller holds r.cl.mu.
func (r *Reader) release() error {
	if r.released {
		return nil
	}
	r.released, r.done, r.have, r.closeLater = true, true, false, false
	r.stop(ErrClosed)
	r.dropPrefetch()
	if r.dirF != nil {
		r.dirF.Close()
		r.dirF = nil
	}
	return r.closeCur()
}
