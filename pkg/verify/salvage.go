package verify

import (
	"errors"

	"github.com/auditseg/auditseg/pkg/segment"
)

// checkSalvaged checks what the damaged archive at path still decodes to
// (segment.OpenSalvaged), frame by frame as readers read it, after its
// damage was reported as r's first finding: the findings then say which
// records of it are damaged, and the records count includes the ones
// read. When nothing decodes that a record could be read from, the
// archive's finding stays the only one.
func checkSalvaged(path string, r *result, o *Options) {
	im, err := segment.OpenSalvagedContext(o.ctx, path)
	if err != nil {
		return
	}
	defer im.Close()
	if im.Lost() == 0 {
		// The whole segment decodes (only the content checksum failed, or
		// the damage lies after the segment): it is checked as a whole,
		// footer and digest included, which vouch for the rest.
		checkGuarded(im, r, o, nil)
		r.rep.State = StateDamaged
		return
	}
	if err := im.Guard(func() { checkPrefix(im, r, o) }); err != nil {
		r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, err.Error(), err
	}
}

// checkPrefix checks the frames of a salvaged archive's segment up to
// im.Lost(), from where nothing decoded. Its footer was lost there too, so
// there is no seal to hold the frames to (the summary's copy is only
// compared with the header), and r stays unwalked: the log-level pass
// must not add "no END frame" for a segment whose END was lost with the
// rest, which the archive's finding covers.
func checkPrefix(im *segment.Image, r *result, o *Options) {
	r.rep.Archived, r.rep.Bytes = true, int64(len(im.Data))
	c := &checker{o: o, r: r, img: im.Data, valid: im.Valid(), t: segment.NewRecordTally(),
		judge: im.RecoveryRefusal()}
	if im.HeaderErr != nil {
		// As checkImage: the frames before the loss are still checked,
		// under the file name's sequence, as the reader reads them.
		if !c.headerByName(im) {
			return
		}
	} else {
		c.known, c.created = true, im.Header.Created
	}
	c.numbered(im.Header.Seq) // as checkImage places it
	if err := im.Check(); err != nil && im.HeaderErr == nil {
		c.addFound(findingFromErr(Torn, im.Path, r.rep.Seq, err), true)
	}
	if err := im.CheckSummary(); errors.Is(err, segment.ErrCorrupt) {
		c.addFound(findingFromErr(Footer, im.Path, c.seq, err), false)
	}
	c.timeBounds()
	limit := segment.RecordLimit(int64(len(c.img)))
	frames := 0
	evs := make([]segment.Event, 0, 256)
	// Sealed: only sealed segments are archived, so a claim or zeros
	// among the frames are damage.
walk:
	for off := int64(segment.HeaderSize); ; {
		evs, _ = segment.WalkBatch(c.img, c.seq, off, segment.Sealed, c.valid, evs[:0])
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			ev := &evs[i]
			if ev.Kind != segment.EvFrame && ev.Kind != segment.EvEnd && ev.Offset+ev.Len > c.valid {
				// A frame the loss cuts short (torn, to the walk) or zeros
				// running into it (the tail): what lies there is lost with
				// the blocks that did not decode, which the archive's
				// finding reports from im.Lost() on. The frame's bytes
				// before that are attributed to nothing rather than
				// reported again as a finding overlapping it.
				break walk
			}
			c.event(ev, limit, &frames)
		}
		last := &evs[len(evs)-1]
		if last.Kind.Ends() {
			break
		}
		off = last.Offset + last.Len
	}
	c.afterEnd(limit, nil)
	r.rep.Records, r.rep.EndOffset = c.t.Records, r.endAt
}
