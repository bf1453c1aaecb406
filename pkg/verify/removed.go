package verify

import (
	"github.com/auditseg/auditseg/pkg/segment"
)

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
	for k := i - 1; k >= 0; k-- { // the newest first: the likeliest to stay
		if segment.Present(u.dir, u.results[k].order) {
			return false
		}
	}
	return true
}
