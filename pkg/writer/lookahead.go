package writer

import "github.com/auditseg/auditseg/pkg/segment"

// lookahead follows a finished segment's frames past the one the tally
// waits at, so that frames committed behind a reservation held open count
// as progress for Close (sealer.drain): the tally alone would report none
// until the held one is committed. It reads commit words, as the tally
// does, and only in the sealer: the append path is untouched. Each frame
// is walked over once; after that only the ones still reserved are read
// again, so a reservation held for long costs a pass no more than one
// load per frame open behind it.
//
// It starts once the segment is full: at a rotation, or when Close
// claims the rest of the active segment. Its first walk counts frames
// committed before that as new; for Close that is one more stamp just
// after drain's own, never progress that goes on without commits.
type lookahead struct {
	off  int64   // the first frame not walked over yet
	open []int64 // frames before off that were reserved when last read
}

// advance reads the frames of img from the tally's position from on and
// reports whether one was committed (or aborted, which commits a PAD)
// since the last call: one that was reserved then, or one walked over for
// the first time. Frames before from are the tally's, which reports its
// own progress.
func (la *lookahead) advance(img []byte, from int64) bool {
	moved := false
	open := la.open[:0]
	for _, off := range la.open {
		switch {
		case off < from: // the tally has passed it
		case segment.LoadLength(img, off) > 0:
			moved = true
		default:
			open = append(open, off)
		}
	}
	la.open = open
	la.off = max(la.off, from)
	limit := segment.RecordLimit(int64(len(img)))
	for la.off+segment.FrameHeaderSize <= limit {
		l := int64(segment.LoadLength(img, la.off))
		if l == 0 {
			// Nothing claimed here yet, or a claim whose word is not
			// stored yet: the frames after it cannot be found before it is.
			break
		}
		// A reserved frame's word is its length negated, the same extent
		// as once it is committed (or aborted into a PAD).
		ext := segment.Align(max(l, -l))
		if la.off+ext > limit {
			break // not plausible: as the tally, take it for not yet
		}
		if l > 0 {
			moved = true
		} else {
			la.open = append(la.open, la.off)
		}
		la.off += ext
	}
	return moved
}

// committedAhead runs the lookahead of each finished segment in q (the
// sealer's queue: every segment Close is waiting to seal) and reports
// whether any frame was committed in one of them since the last pass.
func committedAhead(q []*seg) (bool, error) {
	moved := false
	for _, s := range q {
		if !s.full() {
			break // the active segment: Close has not finished it
		}
		// Guarded as the tally is (sealPass).
		if err := segment.Guard(s.data, func() {
			if s.ahead.advance(s.data, s.tally.Off) {
				moved = true
			}
		}); err != nil {
			return moved, faultErr(s, err)
		}
	}
	return moved, nil
}
