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
	scratch  []byte
}

// start marks rec's segment as changed.
func (c *changedSeg) start(rec *reader.Record) {
	c.seq, c.ok = rec.Position.Seq, true
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
	}
	return true
}
