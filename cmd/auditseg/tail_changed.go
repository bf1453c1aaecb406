package main

import "github.com/auditseg/auditseg/pkg/reader"

// changedSeg is the segment in which tail found a record whose payload
// changed after the reader checked it (payloadCopy): tail prints nothing
// more of it, as the record is missing from the output and the cursor
// cannot pass it. The segment is counted once as unreadable, and not again
// when the reader reports it.
type changedSeg struct {
	seq uint64
	ok  bool
	// readable counts the records of such segments the reader returned
	// after the changed one whose payloads still matched their CRCs: the
	// file may be whole again by the reader's next walk (written back), so
	// they were skipped, not lost, and the closing line cannot say every
	// readable record was printed. Those that changed too are gone, as the
	// damage tail reported.
	readable int
	// adjacent: nothing the reader returned or reported since the changed
	// record was readable or damage of its own, so the next damage it
	// reports starts where the change's bytes (and those of the records
	// skipped that changed too) end.
	adjacent bool
	scratch  []byte
}

// start marks rec's segment as changed.
func (c *changedSeg) start(rec *reader.Record) {
	c.seq, c.ok, c.adjacent = rec.Position.Seq, true, true
}

// sameDamage reports whether d is the change tail reported seen again by
// the reader: zeros adjacent to it, which is what a cut inside a page
// leaves up to the page's end. Reported, it would be the same damage
// twice in other words. Other damage of the segment is its own, and
// whatever follows it is not adjacent to the change any more.
func (c *changedSeg) sameDamage(d *reader.Damage) bool {
	if !c.ok || d.Seq != c.seq {
		return false
	}
	same := c.adjacent && d.Zeros()
	c.adjacent = same
	return same
}

// skip reports whether rec is in the changed segment, counting it if it
// is still readable: the copy is checked as payloadCopy's, and dropped.
func (c *changedSeg) skip(rec *reader.Record) bool {
	if !c.ok || rec.Position.Seq != c.seq {
		return false
	}
	var err error
	if c.scratch, err = rec.AppendPayload(c.scratch[:0]); err == nil {
		c.readable++
		c.adjacent = false
	}
	return true
}
