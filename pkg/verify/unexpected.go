package verify

import (
	"sort"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
)

// addUnexpected reports what a log directory holds besides its segments.
func (rep *Report) addUnexpected(u *unit) {
	var fs []Finding
	for _, p := range u.listing.Unexpected {
		fs = append(fs, Finding{Class: Unexpected, Path: p, Reason: "not part of a log (only segments, archives and LOCK belong here)"})
	}
	if !u.alive { // a live writer or archiver may be creating these right now
		for _, p := range u.listing.Temps {
			reason := "leftover of an interrupted segment creation; writer.Open removes it"
			if strings.HasSuffix(p, segment.ArchiveExt+segment.TempExt) {
				reason = "leftover of an interrupted compress-finished run, or of one running now; safe to delete when none runs"
			}
			fs = append(fs, Finding{Class: Unexpected, Path: p, Reason: reason})
		}
	}
	failed := map[uint64]bool{}
	for _, r := range u.results {
		failed[r.order] = r.rep.Status == Fail
	}
	for _, e := range u.listing.Segments {
		if e.Duplicate != "" {
			fs = append(fs, Finding{Class: Unexpected, Path: e.Duplicate, Seq: e.Seq, Reason: duplicateReason(e.Duplicate, failed[e.Seq])})
		}
	}
	sort.Slice(fs, func(a, b int) bool { return fs[a].Path < fs[b].Path })
	// Bounded like a segment's findings: a directory that also holds
	// thousands of other files listed them all, burying the verdict.
	for i, f := range fs {
		if i < rep.maxFindings {
			rep.addExtra(f)
		} else {
			rep.Totals.Findings[f.Class]++
			rep.Totals.Omitted++
		}
	}
}

// duplicateReason says why the archive at path, beside its original, is
// reported. When the original failed, the operator must learn that this
// copy, which readers pass over for the original, may hold the segment
// as it was before the damage.
func duplicateReason(path string, originalFailed bool) string {
	const why = "archive of a segment whose original is still present (compress-finished --keep-original, or a run interrupted or still running)"
	if !originalFailed {
		return why + "; the original was verified"
	}
	return why + "; the original FAILED, and this archive, which readers pass over for it, was not checked: it may hold the segment as it was archived (auditseg verify " + path + ")"
}
