package reader

// InWait reports whether a Wait of r is in progress, for tests that must
// Close from another goroutine while one is (not before it started).
func InWait(r *Reader) bool {
	r.cl.mu.Lock()
	defer r.cl.mu.Unlock()
	return r.cl.waiting
}
