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
//     records cannot be read by anyone any more: reported as
//     DamageRemoved and passed, as verify drops a segment that vanishes,
//     together with every number up to the first one listed now (see
//     passRemoved).
//
// An archive not found either (retention right after compress-finished)
// is looked for again, a few times at most: after that the error stands.
func (r *Reader) notFound(e segment.Entry, err error) (segment.Entry, *segment.Image, absence, error) {
	for range 3 {
		if r.relist() != nil {
			break
		}
		j := r.entryAtLeast(e.Seq)
		if j == len(r.list) {
			return e, nil, notYet, err
		}
		if r.list[j].Seq != e.Seq {
			r.passRemoved(e, r.list[j].Seq)
			return e, nil, removed, err
		}
		e = r.list[j]
		var im *segment.Image
		if im, err = segment.OpenImage(e.Path); !errors.Is(err, fs.ErrNotExist) {
			return e, im, found, err
		}
	}
	return e, nil, found, err
}

// passRemoved reports segment e and every number after it up to next
// (the first listed now) as one DamageRemoved, and passes them. None of
// them is in the directory now, and e, the lowest, was removed: retention
// removes the oldest segments first, so the numbers above e up to next
// went the same way, whether the reader's listing held them (taken before
// the writer made them, or while retention was deleting: a directory read
// is not a snapshot) or not. No number in between is a gap in the log
// (DamageMissing): that is a hole strictly between two segments that are
// there, and here nothing below next is.
func (r *Reader) passRemoved(e segment.Entry, next uint64) {
	if r.opts.Start.kind == startLast {
		// Records still to skip are the start segment's surplus: none
		// of them is in the next segment.
		r.skip = 0
	}
	if r.report(Damage{Kind: DamageRemoved, Path: e.Path, Seq: e.Seq, Len: int64(next - e.Seq)}) {
		// Arriving at next is then no gap.
		r.lastSeq, r.passed = next-1, true
	}
}
