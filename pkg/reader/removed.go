package reader

import (
	"errors"
	"io/fs"

	"github.com/auditseg/auditseg/pkg/segment"
)

// absence says what a listed segment whose file was not found when the
// reader came to open it turned out to be.
type absence uint8

const (
	// found: there after all (its archive, or the file made again), or
	// an error other than "not found": opened, or reported, as usual.
	found absence = iota
	// notYet: nothing is listed from its number on. Not to be passed.
	notYet
	// removed: later segments are listed and it is not; reported and
	// passed.
	removed
)

// notFound is openSeg's answer to segment e's file not being found (err,
// ENOENT) although the listing had it. The directory is listed again:
//
//   - e's number is listed again: compress-finished replaced the file by
//     its archive (written and renamed into place before the original is
//     removed), or a writer made the file again. That file is opened.
//   - nothing is listed from e's number on: a file a writer made ahead of
//     need and removed unused when it closed. The next writer makes that
//     name again, and it is read then.
//   - later segments are listed and e's number is not: removed by
//     something other than a writer (a writer removes the files it made
//     ahead newest first, so it never leaves a later one behind), such as
//     retention deleting the oldest segments while they are read. Its
//     records cannot be read by anyone any more: reported, together with
//     every number up to the first one listed now, and passed. Whether as
//     DamageRemoved or as a hole in the log depends on the segment below
//     it (below, 0 for none; see passRemoved).
//
// An archive not found either (retention right after compress-finished)
// is looked for again, a few times at most: after that the error stands.
func (r *Reader) notFound(e segment.Entry, below uint64, err error) (segment.Entry, *segment.Image, absence, error) {
	for range 3 {
		if r.relist() != nil {
			break
		}
		j := r.entryAtLeast(e.Seq)
		if j == len(r.list) {
			return e, nil, notYet, err
		}
		if r.list[j].Seq != e.Seq {
			r.passRemoved(e, below, r.list[j].Seq)
			return e, nil, removed, err
		}
		e = r.list[j]
		var im *segment.Image
		if im, err = r.openImage(e); !errors.Is(err, fs.ErrNotExist) {
			return e, im, found, err
		}
	}
	return e, nil, found, err
}

// passRemoved reports segment e and every number after it up to next
// (the first listed now), none of which is in the directory now, and
// passes them. Retention removes the oldest segments first, so if the
// segment below e (below, the one passed last) is gone too, and so is
// every older one listed (olderPresent), e was removed that way and the
// numbers above it up to next with it, whether the reader's listing held
// them (taken before the writer made them, or while retention was
// deleting: a directory read is not a snapshot) or not: one
// DamageRemoved. If an older segment is still there, e was taken from
// the middle of the log, which retention does not do: the numbers are a
// hole between two segments that are there, damage (DamageMissing), as
// arrive and verify judge a hole. Below is looked at after e was found
// gone, so retention that removed it first is seen.
func (r *Reader) passRemoved(e segment.Entry, below, next uint64) {
	r.passStart()
	d := Damage{Kind: DamageRemoved, Path: e.Path, Seq: e.Seq, Len: int64(next - e.Seq)}
	if !r.removedBelow(below, e.Seq) {
		d.Kind, d.Path = DamageMissing, r.dir
	}
	if r.report(d) {
		// Arriving at next is then no gap.
		r.lastSeq, r.passed = next-1, true
	}
}

// removedBelow reports whether a hole starting at seq was made by
// retention: the segment below it (0 for none) is gone, and so is every
// older one the listing holds. One still there makes the hole damage.
// passRemoved and arrive judge a hole by it, as verify does.
func (r *Reader) removedBelow(below, seq uint64) bool {
	return !(below > 0 && r.exists(below)) && !r.olderPresent(seq)
}

// olderPresent reports whether a segment the listing holds below seq is
// still in the directory. Retention removes the oldest segments first: a
// hole above a segment that stays was not made by it, however the
// segments right below the hole went. The newest are looked at first,
// where one that stays is likeliest; a stale listing's entries that
// retention removed since are found gone, once: the holes after it do not
// look at them again (segment.Gone).
func (r *Reader) olderPresent(seq uint64) bool {
	return r.older.OlderPresent(r.dir, r.entryAtLeast(seq), func(k int) uint64 { return r.list[k].Seq })
}
