package verify

// removedWhileRead reports whether the hole before r, the i-th result of
// u, was made by retention while the log was read, not a gap: every
// segment in it was listed and then gone when it was to be opened, and
// every older segment read, is gone now too. Retention removes the
// oldest segments first, so a segment removed while an older one stays is
// a gap, as is a number that was missing when the directory was listed.
func removedWhileRead(u *unit, i int, r *result) bool {
	prev := u.results[i-1]
	for s := prev.order + 1; s < r.order; s++ {
		if !u.gone[s] {
			return false
		}
	}
	return !u.older.OlderPresent(u.dir, i, func(k int) uint64 { return u.results[k].order })
}
