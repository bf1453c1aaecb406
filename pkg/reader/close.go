package reader

import "sync"

// Closing a reader, from its own goroutine or from another one while it
// waits.
//
// Only Wait may be running when Close is called from another goroutine:
// it is not per record, so it can afford a mutex to say it runs, where
// Next, on the replay path, cannot. A Close that finds a Wait in progress
// only closes stop, which wakes the Wait's sleep, and the Wait releases
// the segments on its way out; a Close from a callback (OnDamage,
// Bulk.Write) leaves them to the Next or Wait that called it likewise, as
// the decoder still uses them. Releasing happens under the mutex and
// once: a second Close returns nil, after the first one's release if that
// Close did it, possibly before it if a Wait is to do it on its way out
// (whose release error, like a callback's Close's, is not returned).

// closer is a Reader's closing state.
type closer struct {
	mu      sync.Mutex
	closed  bool          // Close was called
	waiting bool          // a Wait is in progress
	stop    chan struct{} // closed by the first Close
}

// Close releases the segments the reader holds, and stops it: Next
// returns false, Err and Wait return ErrClosed (Err keeps an error that
// stopped the reader before). Payloads returned before are invalid after
// it. Calling it again returns nil.
//
// Call it from the reader's goroutine; stop a follower from another one
// by cancelling Wait's context. A Close from another goroutine that lands
// while Wait blocks (or All waits for a record) wakes that Wait, which
// returns ErrClosed and releases the segments as it returns, and once
// that Close has returned OnDamage and Bulk.Write are not called again
// (Bulk.Append may be, on the ranges the bulk workers hold); one that
// lands while the goroutine is in Next or reads a Payload is a data race
// that can crash the process (see Closing in the package documentation).
// Called from Options.OnDamage or Bulk.Write, it stops the reader there,
// as Strict does: no more records, reports or writes; the Next or Wait
// that called it returns false or ErrClosed and releases the segments as
// it returns.
func (r *Reader) Close() error {
	r.cl.mu.Lock()
	defer r.cl.mu.Unlock()
	if !r.cl.closed {
		r.cl.closed = true
		if r.cl.stop != nil { // nil in a Reader the package's tests build
			close(r.cl.stop)
		}
	}
	// inCallback is read only when no Wait runs: then it is this
	// goroutine's own (a Close concurrent with Next is not allowed).
	if r.cl.waiting || r.inCallback {
		return nil
	}
	return r.release()
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

// endWait unmarks it, releasing the segments if Close was called, and
// reports whether it was.
func (r *Reader) endWait() bool {
	r.cl.mu.Lock()
	defer r.cl.mu.Unlock()
	r.cl.waiting = false
	if !r.cl.closed {
		return false
	}
	_ = r.release()
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
	if r.err == nil {
		r.err = ErrClosed
	}
	return true
}

// release does Close's work, once; the caller holds r.cl.mu.
func (r *Reader) release() error {
	if r.released {
		return nil
	}
	r.released, r.done, r.have, r.closeLater = true, true, false, false
	if r.err == nil {
		r.err = ErrClosed
	}
	r.dropPrefetch()
	if r.dirF != nil {
		r.dirF.Close()
		r.dirF = nil
	}
	return r.closeCur()
}
