package segment

// Gone remembers a run of entries of one listing of a log that were found
// gone (not Present), so that OlderPresent does not look at them again.
// Readers and verify ask, for each hole in the log, whether a segment older
// than the hole is still there (retention removes the oldest first, so one
// that is makes the hole damage). While retention removes many segments
// during a read, every hole would otherwise look at every older segment
// again: n² lstat calls for n segments.
//
// What was found gone stays gone. A writer numbers its segments on from the
// newest there, so a number below the newest comes back only in a log
// emptied completely and begun again at 1 (and a reader's next listing
// sees it: start a new Gone with each listing); compress-finished renames
// an archive into place for a segment whose original retention removed
// while it was being compressed, and removes it again: that segment was
// removed. The zero value knows of no entry gone.
type Gone struct{ from, to int } // entries [from, to)

// OlderPresent reports whether one of the entries 0 to i-1 of the listing
// of dir is present now, seq(k) being the number of entry k. It looks at
// the newest first, the likeliest to stay, and stops at the first one
// present, passing over the run an earlier call found gone.
func (g *Gone) OlderPresent(dir string, i int, seq func(k int) uint64) bool {
	k := i - 1
	for ; k >= 0; k-- {
		if k >= g.from && k < g.to {
			k = g.from // the loop goes on below the run
			continue
		}
		if Present(dir, seq(k)) {
			break
		}
	}
	if k < i-1 {
		// Entries k+1 to i-1 are gone: the run found now, and the one
		// before if the walk passed it (a walk that stopped above it
		// forgets it, to keep one run).
		g.from, g.to = k+1, i
	}
	return k >= 0
}
