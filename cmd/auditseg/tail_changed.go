package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// tailReports is what tail reported on stderr, counted for its closing
// line and exit code: damage the reader skipped, and segments that could
// not be read, a record that changed while it was printed included.
type tailReports struct {
	out    *bufio.Writer // flushed before each line: stdout first, as a terminal shows them
	stderr io.Writer
	// damaged counts damage (exit 1); unreadable, segments that could not
	// be read (exit 2, the cursor not stored).
	damaged, unreadable int
	faulted             changedSeg
	// archives holds the archive beside each original read instead of it
	// (Options.OnDuplicate): damage in such an original is said once
	// with that archive's name, a copy this run passed over.
	archives map[string]string
}

// damage reports d, which the reader skipped (Options.OnDamage).
func (t *tailReports) damage(d reader.Damage) {
	if t.faulted.sameDamage(&d) {
		return
	}
	if errors.Is(d.Err, segment.ErrChangedAfterCheck) {
		// The bulk replay's word for what payloadCopy finds in order: a
		// record it checked, changed since. It reads on after it.
		t.changed(d.Seq, notPrinted(d.Err, segment.Position{Seq: d.Seq, Offset: d.Offset}))
		return
	}
	t.out.Flush()
	// A segment removed while the log was read (retention: the reader
	// found the one below it gone too) is neither damage nor a read that
	// failed: the log is as its owner made it, and verify leaves such
	// segments out too. A warning, as crash leftovers. One taken from the
	// middle is DamageMissing.
	if d.Kind.CrashLeftover() || d.Kind == reader.DamageRemoved {
		fmt.Fprintf(t.stderr, "auditseg tail: warning: %v\n", &d)
		return
	}
	if unreadableSegment(d) {
		if !t.faulted.ok || d.Seq != t.faulted.seq {
			t.unreadable++
		}
	} else {
		t.damaged++
	}
	fmt.Fprintf(t.stderr, "auditseg tail: %v\n", &d)
	if a, ok := t.archives[d.Path]; ok {
		delete(t.archives, d.Path)
		fmt.Fprintf(t.stderr, "auditseg tail: %s: its archive %s is beside it, not read (the original is preferred): 'auditseg verify %s' checks it, 'auditseg tail -n +1 %s' reads it\n", d.Path, a, a, a)
	}
}

// changed reports err, a record of segment seq that changed after the
// reader checked it (payloadCopy), and skips the rest of the segment.
func (t *tailReports) changed(seq uint64, err error) {
	t.out.Flush()
	t.unreadable++
	t.faulted.start(seq)
	fmt.Fprintf(t.stderr, "auditseg tail: %v\n", err)
}

// closing is tail's last word: the error its exit code comes from, if any.
func (t *tailReports) closing(dir string) error {
	if t.unreadable > 0 {
		// Records tail skipped after one that changed that were still
		// readable are counted instead.
		printedAll := "every readable record was printed"
		if n := t.faulted.readable; n > 0 {
			were := "were"
			if n == 1 {
				were = "was"
			}
			printedAll = fmt.Sprintf("%s read after a record that changed %s not printed", plural(n, "record"), were)
		}
		return withCode(exitUsage, fmt.Errorf("%s: %s could not be read (see above); %s", dir, plural(t.unreadable, "segment"), printedAll))
	}
	if t.damaged > 0 {
		return withCode(exitFailure, fmt.Errorf("%s: %s skipped; run 'auditseg verify %s' for a full report", dir, plural(t.damaged, "damaged place"), dir))
	}
	return nil
}

// unreadableSegment reports whether d says a segment could not be read at
// all (it could not be opened, or failed while mapped), which is an I/O
// error, as opposed to damage the decoder found in its bytes.
func unreadableSegment(d reader.Damage) bool {
	return d.Kind == reader.DamageSegment && d.Err != nil && !errors.Is(d.Err, segment.ErrCorrupt)
}

// notPrinted is err, about the record at pos, saying what tail left out.
func notPrinted(err error, pos segment.Position) error {
	return fmt.Errorf("%w; the record at %v and the rest of the segment were not printed", err, pos)
}

// changedSeg is the segment in which tail found a record whose payload
// changed after the reader checked it (payloadCopy, or the bulk replay's
// report of one): tail prints nothing
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

// start marks segment seq as changed.
func (c *changedSeg) start(seq uint64) {
	c.seq, c.ok, c.adjacent = seq, true, true
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
