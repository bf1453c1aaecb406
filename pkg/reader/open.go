package reader

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
)

// Moving from one segment to the next: opening it, and what is found in
// the directory on the way (segments missing, removed or unreadable).

// openNext opens the next segment to read, skipping those that cannot be
// read or hold nothing wanted. It returns false if there is none now.
func (r *Reader) openNext() bool {
	for {
		i := r.nextIndex()
		if r.bulkReady(i) {
			r.bulk(i)
			if r.cur != nil {
				r.startPrefetch(r.cur.seq) // it is sealed
				return true
			}
			if r.err != nil {
				return false
			}
			// What is left, if anything, is read in order: openSeg finds
			// the next segment's image, already opened, in r.pre.
			i = r.nextIndex()
		}
		if i == len(r.list) {
			if r.single != "" {
				r.done = true // its END, or the segment could not be read
				return false
			}
			if !r.waitListing() {
				return false
			}
			continue
		}
		e := r.list[i]
		// The segment below e: if e turns out removed, it tells removal
		// (gone too) from a hole in the log (still there; see passRemoved).
		below := e.Seq - 1
		if r.passed {
			below = r.lastSeq
		}
		if !r.passHole(e.Seq) {
			return false
		}
		// What to go back to if e is not made yet: the hole below it,
		// reported, stays passed (reported once).
		lastSeq, passed := r.lastSeq, r.passed
		r.lastSeq, r.passed = e.Seq, true
		c, gone := r.openSeg(e, below, true)
		if c != nil {
			r.cur = c
			if c.quiet {
				// It will be read to its END: the next one is needed soon.
				r.startPrefetch(c.seq)
			}
			return true
		}
		if r.err != nil {
			return false
		}
		if gone {
			// Not read past: a writer may create it again (see openSeg).
			r.lastSeq, r.passed = lastSeq, passed
			if !r.opts.Follow {
				r.done = true
			}
			return false
		}
	}
}

// arrive reports the sequence numbers absent between the last segment
// the reader passed and seq, then marks seq passed. It returns false when
// the reader must stop (Strict).
func (r *Reader) arrive(seq uint64) bool {
	if !r.passHole(seq) {
		return false
	}
	r.lastSeq, r.passed = seq, true
	return true
}

// passHole is arrive's report, which marks the numbers below seq passed
// once it made it: openNext keeps them passed when seq turns out not made
// yet. The hole is a gap in the log (DamageMissing) only while the
// segment below it is still there: one
// the reader read, or opened ahead, may have been removed since, and the
// numbers after it with it (retention removes the oldest first) while the
// reader's listing, taken before the writer made them, never held them.
// A hole that reaches down to a removed segment, with no older segment
// still there, is removal.
//
// Before any segment was passed, the numbers from a start position's
// segment (Start At or After: tail --from, a cursor) up to seq are a hole
// too when an older segment is still there: without this the reader
// began after it silently. Not removal then: a segment gone before the
// reader started, with every older one, is simply not there.
func (r *Reader) passHole(seq uint64) bool {
	var first uint64 // the first number absent, 0 for none
	removal := false
	switch {
	case r.passed && seq-r.lastSeq > 1:
		first, removal = r.lastSeq+1, r.removedBelow(r.lastSeq, r.lastSeq+1)
	case !r.passed && r.startSeq > 0 && seq > r.startSeq && !r.removedBelow(r.startSeq-1, r.startSeq):
		first = r.startSeq
	}
	if first > 0 {
		d := Damage{Kind: DamageMissing, Path: r.dir, Seq: first, Len: int64(seq - first)}
		if removal {
			d.Kind, d.Path = DamageRemoved, filepath.Join(r.dir, segment.FileName(d.Seq))
		}
		if !r.report(d) {
			return false
		}
		r.lastSeq, r.passed = seq-1, true
	}
	return true
}

// waitListing refreshes the listing when the reader has read every
// segment it knows of, and reports whether a segment to read is there now.
// In follow mode a poll costs two lstat calls for the next segment's
// names, and finding it two more (refresh), with a full listing every
// second in case of a gap in the numbers.
func (r *Reader) waitListing() bool {
	next := max(r.startSeq, 1)
	if r.passed {
		next = r.lastSeq + 1
	}
	if r.opts.Follow && time.Since(r.listAt) < time.Second && !r.exists(next) {
		return false
	}
	if err := r.refresh(); err != nil {
		r.stop(err)
		return false
	}
	if r.nextIndex() < len(r.list) {
		return true
	}
	if !r.opts.Follow {
		r.done = true
	}
	return false
}

// openSeg opens segment e for reading, or returns nil (after reporting
// why, if it is damaged or removed) when it is to be skipped. gone is true
// when the file vanished and nothing is listed after it: not to be passed.
// below is the segment before e: the one passed last, else e.Seq-1.
// retry: a file truncated before its footer is read is opened again.
func (r *Reader) openSeg(e segment.Entry, below uint64, retry bool) (*seg, bool) {
	im, err, ok := r.takePrefetch(e)
	if !ok {
		im, err = r.openImage(e)
	}
	if errors.Is(err, fs.ErrNotExist) && r.single == "" {
		// Archived or removed since the listing: see what is there now.
		var was absence
		if e, im, was, err = r.notFound(e, below, err); was != found {
			return nil, was == notYet
		}
	}
	if r.stopIfRestarted() {
		// e may be a new log's: not read, and not damage.
		if im != nil {
			im.Close()
		}
		return nil, false
	}
	im, salvaged, err := r.openSalvaging(e.Path, im, err)
	if r.cancelled(err) {
		return nil, false
	}
	if err != nil {
		r.skipUnreadable(e)
		r.report(Damage{Kind: DamageSegment, Path: e.Path, Seq: e.Seq, Offset: errOffset(err), Err: segment.FileError(e.Path, "cannot open segment", err)})
		return nil, false
	}
	if salvaged != nil && !r.report(Damage{Kind: DamageSegment, Path: e.Path, Seq: e.Seq, Offset: errOffset(salvaged),
		Err: fmt.Errorf("%w; %s", salvaged, salvagedRecords(im))}) {
		im.Close()
		return nil, false
	}
	var header *Damage // reported once the footer is read (below)
	if im.HeaderErr != nil {
		// The header is reported, not the records behind it: each is
		// vouched for by its CRC, mixed with the name's sequence number.
		hd := Damage{Kind: DamageSegment, Path: e.Path, Seq: e.Seq, Offset: errOffset(im.HeaderErr), Err: im.HeaderErr}
		if !im.ReadByName() {
			r.skipUnreadable(e)
			r.report(hd)
			im.Close()
			return nil, false
		}
		header = &hd
	}
	c := &seg{path: e.Path, img: im, seq: e.Seq, seed: segment.FrameSeed(im.Header.Seq), mark: markOf(e.Seq, im), off: segment.HeaderSize}
	if r.single != "" {
		c.seq = im.Header.Seq
	}
	// The first read of the mapping since OpenImage's: a prefetched image
	// was opened while the segment before was read, time enough for the
	// file to be truncated (and a plain open has a window too). Its footer
	// is gone, its records before the cut are not: it is opened again, and
	// read as it is now, as it would have been had the reader come to it
	// after the cut. Before anything of the mapped file is reported (the
	// salvage report is an archive's, in memory): the fresh image's
	// reports stand for it, once (its damaged header's too), and a cut
	// made from the report's callback comes after the footer, where the
	// walk reads what it left. A fresh image that faults as well (cut
	// again meanwhile) is reported, nothing of it read.
	var f segment.Footer
	var ferr error
	if err := im.Guard(func() { f, ferr = im.Footer() }); err != nil {
		im.Close()
		if retry {
			return r.openSeg(e, below, false)
		}
		r.skipUnreadable(e)
		if header == nil || r.report(*header) {
			r.report(changed(c, err))
		}
		return nil, false
	}
	if header != nil {
		header.Err = fmt.Errorf("%w; its records are read one by one under the sequence number its file name gives, each checked by its CRC", im.HeaderErr)
		if !r.report(*header) {
			im.Close()
			return nil, false
		}
	}
	if err := im.Check(); err != nil && im.HeaderErr == nil {
		// The header is usable: read what the file holds.
		if !r.report(Damage{Kind: DamageSegment, Path: e.Path, Seq: e.Seq, Offset: errOffset(err), Err: err}) {
			im.Close()
			return nil, false
		}
	}
	switch {
	case ferr == nil:
		// The file's own footer: it was stored after every frame, so
		// the file is finished even under a header Check refused (a copy
		// of another segment), which is read as sealed. Whether it ends
		// a dead writer's tail is another question (countsSealed).
		c.quiet, c.footer = true, true
		if r.since > minTime && (f.Records == 0 || f.MaxTime < r.since) {
			im.Close()
			return nil, false // every record in it is older than Since
		}
		if r.seek == nil && r.skip > 0 && r.skip >= f.Records {
			r.skip -= f.Records
			im.Close()
			return nil, false
		}
	case errors.Is(ferr, segment.ErrNoFooter):
	case r.alive:
		// A live writer (or its recovery) may be writing the footer right
		// now: read the segment as unsealed; its END frame still ends it.
	default:
		// A footer is written only after every frame is committed, so a
		// damaged one still means the segment is finished.
		c.quiet, c.footer = true, true
		if !r.report(Damage{Kind: DamageSegment, Path: e.Path, Seq: e.Seq, Offset: errOffset(ferr), Err: ferr}) {
			im.Close()
			return nil, false
		}
	}
	if im.Lost() > 0 {
		// Only sealed segments are archived; the footer was lost with
		// the blocks after im.Lost().
		c.quiet, c.footer = true, true
	}
	if r.seek != nil {
		r.applySeek(c, *r.seek)
		r.seek = nil
	}
	return c, false
}

// skipUnreadable counts the records of a segment that cannot be read
// against the records still to skip for a Skip start, as a readable
// sealed one's are: the start was counted with its footer (an archive's
// summary may be intact when its content is not), and they must not be
// taken from the next segment's instead. A Last start's are the start
// segment's alone (passStart).
func (r *Reader) skipUnreadable(e segment.Entry) {
	r.passStart()
	if r.seek != nil || r.skip == 0 {
		return
	}
	f, err := segment.ReadFooterContext(r.ctx, e.Path)
	if err == nil {
		r.skip -= min(r.skip, f.Records)
	}
	r.cancelled(err) // the damage found is then not reported (report)
}

// applySeek places c at the position an At or After start names, when c
// is that position's segment. A committed frame there is trusted (its CRC
// covers the sequence and offset); otherwise the segment is walked from
// its start and records before the position are passed over.
func (r *Reader) applySeek(c *seg, st Start) {
	if c.seq != st.pos.Seq {
		if r.single != "" && c.seq < st.pos.Seq {
			c.min = math.MaxInt64 // the whole file is before the position
		}
		return
	}
	// The walk starts at the segment's first frame and passes records
	// before the position: jumping to the position instead would trust
	// whatever decodes there, and a position inside a record's payload
	// (a mistyped --from, a cursor file that "may hold anything") could
	// land on a frame forged inside that payload, CRC and all.
	off := st.pos.Offset
	c.min = off
	if st.kind == startAfter && off < math.MaxInt64 {
		c.min = off + 1
	}
}

func errOffset(err error) int64 {
	var ce *segment.CorruptError
	var ad *segment.ArchiveDamage
	switch {
	case errors.As(err, &ce):
		return ce.Offset
	case errors.As(err, &ad):
		return ad.Lost
	}
	return 0
}

// openImage is segment.OpenEntryContext under the reader's context: the
// wait for a lease's break ends when it is done (OpenContext).
func (r *Reader) openImage(e segment.Entry) (*segment.Image, error) {
	return segment.OpenEntryContext(r.ctx, e)
}

// cancelled reports whether err, from opening a segment or LOCK, is the
// reader's context ending the wait for a lease's break; it then stops the
// reader with err: what the file holds was not read, but it is not damage
// either.
func (r *Reader) cancelled(err error) bool {
	if !r.endedBy(err) {
		return false
	}
	r.stop(err)
	return true
}

// endedBy reports whether err is the reader's context ending a wait.
func (r *Reader) endedBy(err error) bool {
	return cancel.Ended(r.ctx, err)
}
