package reader

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// seg is the segment being read.
type seg struct {
	path string
	img  *segment.Image
	seq  uint64 // for positions
	seed uint32 // the frames' CRC seed (of the header's sequence number)
	mark mark   // its header's, if the header is the segment's own
	off  int64  // where the next walk starts
	min  int64  // records before this offset are not returned (At/After)
	// quiet: no writer can add frames any more (sealed, damaged footer, or
	// a later segment is sealed), so unfinished frames are skipped.
	quiet bool
	// footer: the segment has a footer (valid or damaged), written only
	// once every frame up to END was committed: the walk is Sealed, so
	// zeros or a claim where frames should be are damage, not leftovers.
	footer bool
	// parked: the walk found only zeros from off to the record limit while
	// no writer held the log; polls look at the commit word at off, the
	// lock and the directory instead of rescanning the zeros.
	parked    bool
	parkAlive bool
	laterAt   time.Time // last look for a later sealed segment
	// refusal: why recovery leaves the segment unsealed, "" if it seals
	// it, once refusalKnown (refused.go).
	refusal      string
	refusalKnown bool
	// released is set when the image is closed: Records of this segment
	// kept by the caller can no longer be copied (Record.AppendPayload).
	released atomic.Bool
}

// noStop marks a walk that stopped for no event: a full batch, or the
// record limit.
const noStop segment.EventKind = 255

// fill moves to the next record, reading segments as needed. It returns
// false when none can be returned now; r.err or r.done say if ever.
func (r *Reader) fill() bool {
	for {
		if r.done {
			return false // the end Last located (consume)
		}
		if r.cur == nil && !r.openNext() {
			return false
		}
		for r.ei < len(r.evs) {
			ev := &r.evs[r.ei]
			r.ei++
			if r.consume(ev) {
				return true
			}
			if r.err != nil {
				return false
			}
		}
		if !r.refill() {
			return false
		}
	}
}

// consume takes one buffered event and reports whether it is the record to
// return.
func (r *Reader) consume(ev *segment.Event) bool {
	c := r.cur
	if r.past(c.seq, ev.Offset) {
		r.done = true
		return false
	}
	c.off = ev.Offset + ev.Len
	if ev.Kind == segment.EvFrame {
		f := &ev.Frame
		if f.Type != segment.TypeData || ev.Offset < c.min || f.Time < r.since {
			return false
		}
		if r.skip > 0 {
			r.skip--
			return false
		}
		// Field by field: a composite literal is built on the stack and
		// then copied, and that copy stalls on store forwarding.
		r.rec.Position.Seq, r.rec.Position.Offset = c.seq, ev.Offset
		r.rec.Time = time.Unix(0, f.Time)
		r.rec.Payload = f.Payload
		r.rec.seg, r.rec.crc = c, f.CRC
		return true
	}
	d, ok := eventDamage(c.path, c.seq, ev)
	// Damage before the requested start belongs to records not asked for.
	if !ok || c.off <= c.min || r.skip > 0 {
		return false
	}
	if d.Kind == DamageTorn {
		r.tornTail(c, ev, &d)
	}
	if d.Kind == DamageReserved {
		damagedEndClaim(c, &d)
	}
	if d.Kind.CrashLeftover() {
		r.notLeftover(c, &d)
	}
	r.report(d)
	return false
}

// past reports whether offset off of segment seq is at or after r.end,
// where a read Last located ends. A single file is placed by its
// header's sequence, which its name need not carry: only offsets count.
func (r *Reader) past(seq uint64, off int64) bool {
	if r.end == nil {
		return false
	}
	if r.single != "" {
		return off >= r.end.Offset
	}
	return (Position{Seq: seq, Offset: off}).Compare(*r.end) >= 0
}

// damagedEndClaim makes d, a reservation in c, torn damage if it is an
// END claim with a non-zero byte behind its header, for which recovery
// leaves the segment unsealed (segment.Refusal): not a dead writer's
// leftover (verify fails it). The error names that byte. A file shorter
// than its header says, reported as such, is not read past its end; nor
// is one cut since, which the next walk meets.
func damagedEndClaim(c *seg, d *Damage) {
	judge := c.img.RecoveryRefusal()
	ev := segment.Event{Kind: segment.EvReserved, Offset: d.Offset, Len: d.Len}
	var why *segment.CorruptError
	if c.img.Guard(func() { why = judge.Event(&ev) }) != nil || why == nil {
		return
	}
	d.Kind = DamageTorn
	d.Err = &segment.CorruptError{Path: c.path, Offset: why.Offset, Reason: segment.DamagedEndClaim(d.Offset, why.Offset)}
}

// tornTail makes d, the torn region ev of c, a crash leftover
// (DamageUnfinished) if it is a torn tail recovery finishes
// (segment.Refusal.TornTail; FORMAT.md section 8, step 3.5): the last
// frame of a dead writer's segment without a footer, committed but torn
// by a power cut, nothing intact after it. A live writer's torn frame is
// damage: its frames are committed only once written. Rare (damage
// reaching the record limit), so the judgment costs a healthy log
// nothing.
func (r *Reader) tornTail(c *seg, ev *segment.Event, d *Damage) {
	if c.footer || ev.Offset+ev.Len != segment.RecordLimit(int64(len(c.img.Data))) || !r.abandoned(c) {
		return
	}
	judge := c.img.RecoveryRefusal()
	var ok bool
	if c.img.Guard(func() { _, ok = judge.TornTail(ev) }) != nil || !ok {
		return
	}
	reason := "torn tail: a committed frame an interrupted flush tore; nothing intact follows it"
	var ce *segment.CorruptError
	if errors.As(d.Err, &ce) {
		reason += " (" + ce.Reason + ")"
	}
	d.Kind, d.Err = DamageUnfinished, &segment.CorruptError{Path: c.path, Offset: ev.Offset, Reason: reason}
}

// refill walks the current segment from its offset into the event buffer.
// It returns true when the caller should look again (events buffered, or
// the segment finished) and false when nothing can be read now.
func (r *Reader) refill() bool {
	c := r.cur
	r.evs, r.ei = r.evs[:0], 0
	if r.remade(c, false) {
		return r.err == nil
	}
	if c.parked && !r.unpark(c) {
		return false
	}
	mode := segment.Live
	if c.footer {
		mode = segment.Sealed
	} else if c.quiet {
		mode = segment.Quiescent
	}
	stop, ok := r.walk(c, mode, false)
	if !ok {
		return r.err == nil
	}
	if len(r.evs) > 0 {
		return true // the stop event, if any, is met again by the next walk
	}
	switch stop.Kind {
	case segment.EvEnd:
		r.finish()
		return true
	case segment.EvPending:
		return r.pending(c)
	case segment.EvTail:
		return r.atTail(c)
	}
	// The walk reached the record limit: no frame can follow.
	r.finish()
	return true
}

// walk runs segment.Walk from c.off, buffering frames and damage up to a
// batch, or in probe mode up to and including the first frame. It returns
// the event that stopped it (END, pending, tail; Kind noStop otherwise),
// and false if the mapping faulted at c.off (the file was truncated under
// it), which is reported and finishes the segment. A fault further on
// keeps the events decoded before it: their bytes were there and their
// CRCs passed. They are returned as a batch; the walk after them meets
// the fault again and reports it from where they end.
func (r *Reader) walk(c *seg, mode segment.WalkMode, probe bool) (stop segment.Event, ok bool) {
	stop.Kind = noStop
	if !probe {
		err := c.img.Guard(func() { r.evs, _ = c.img.WalkBatch(c.off, mode, r.evs[:0]) })
		if err == nil {
			if n := len(r.evs); n > 0 && r.evs[n-1].Kind.Ends() {
				stop, r.evs = r.evs[n-1], r.evs[:n-1]
			}
			return r.cutAtLoss(c, stop), true
		}
		// WalkBatch says how many events it decoded only by returning:
		// walk again one event at a time to keep those before the fault.
		r.evs = r.evs[:0]
	}
	err := c.img.Guard(func() {
		c.img.Walk(c.off, mode, func(ev segment.Event) bool {
			switch ev.Kind {
			case segment.EvEnd, segment.EvPending, segment.EvTail:
				stop = ev
				return false
			}
			r.evs = append(r.evs, ev)
			if probe && ev.Kind == segment.EvFrame {
				return false
			}
			return len(r.evs) < batch
		})
	})
	if err == nil || len(r.evs) > 0 {
		return r.cutAtLoss(c, stop), true
	}
	r.faulted(c, err)
	return stop, false
}

// faulted reports a walk that faulted before it decoded anything from
// c.off and finishes the segment. err is c.img.Guard's: it names the
// offset that had no data, as verify and inspect do for the same file;
// Offset says where the records not read start.
func (r *Reader) faulted(c *seg, err error) {
	if r.report(changed(c, err)) {
		r.finish()
	}
}

// changed is the report of a read of c's mapping that faulted: err, from
// c.img.Guard, says where the file ended; the records from c.off on are
// not read.
func changed(c *seg, err error) Damage {
	return Damage{Kind: DamageSegment, Path: c.path, Seq: c.seq, Offset: c.off, Err: err}
}

// pending handles a live walk that stopped at an unwritten or reserved
// slot with nothing before it. If the writer is gone, the slot will never
// be committed: walk on quiescently (skipping it) up to the next frame,
// keeping the result only if no writer took the lock meanwhile.
func (r *Reader) pending(c *seg) bool {
	if !r.abandoned(c) {
		return false
	}
	stop, ok := r.walk(c, segment.Quiescent, true)
	if !ok {
		return r.err == nil
	}
	if !c.quiet && r.refreshAlive() {
		r.evs = r.evs[:0]
		return false
	}
	if len(r.evs) > 0 {
		return true
	}
	switch stop.Kind {
	case segment.EvEnd:
		r.finish()
		return true
	case segment.EvTail:
		return r.atTail(c)
	}
	r.finish()
	return true
}

// abandoned reports whether no writer will commit more frames in c.
func (r *Reader) abandoned(c *seg) bool {
	if c.quiet {
		return true
	}
	if r.laterSealed(c) {
		c.quiet = true
		return true
	}
	if r.opts.Follow && time.Since(r.aliveAt) < aliveEvery {
		return !r.alive // confirmed afresh after the probe walk
	}
	return !r.refreshAlive()
}

// laterSealed reports whether c is finished though a writer holds the
// log: one that recovery could not seal because a committed frame in it
// is damaged. Either the live writer's LOCK says it appends from a later
// segment (a writer claims only in its own segments, from that one on,
// and the next writer numbers on from the newest: FORMAT.md section 9),
// or a later segment is sealed (segments are sealed in order, each footer
// chaining the previous digest). Only frames a live writer may still
// commit can be pending in c while the one after it has frames (a claim
// held open, the crossing appender's END: FORMAT.md section 5), so
// frames after c prove nothing. LOCK is read after c was opened: a
// segment below the first one named then is no writer's, now or later.
// The lock's answer is kept (writerNow): abandoned need not ask again.
func (r *Reader) laterSealed(c *seg) bool {
	if r.single != "" || time.Since(c.laterAt) < time.Second {
		return false
	}
	c.laterAt = time.Now()
	if w := r.writerNow(); w.Alive && w.From > c.seq {
		return true
	}
	if err := r.refresh(); err != nil {
		return false
	}
	return r.laterAny(c.seq, 4, r.countsSealed)
}

// countsSealed reports whether the segment file at path is sealed as
// recovery and verify count it (segment.SealedFooter, FORMAT.md section
// 8): a valid footer under a header that agrees with the file's size and
// name. A valid footer in a copy of another segment renamed into place
// does not end what a dead writer left unsealed before it: recovery
// passes over the copy and seals those segments as crash residue. The
// footer is read, the file not mapped, as laterHasFrames does. A file
// gone since the listing because compress-finished archived it was
// sealed. A read whose lease wait the context ended is an error
// (laterAny stops the reader).
func (r *Reader) countsSealed(e segment.Entry) (bool, error) {
	_, err := segment.SealedFooterContext(r.ctx, e.Path)
	if _, archived := segment.ArchivedInstead(e.Path, err); archived {
		return true, nil
	}
	if r.endedBy(err) {
		return false, err
	}
	return err == nil, nil
}

// atTail handles a quiescent walk that found only zeros from c.off to the
// record limit: the end of the log, unless a later segment exists or the
// segment is sealed.
func (r *Reader) atTail(c *seg) bool {
	var f segment.Footer
	var ferr error
	if segment.Guard(c.img.Data, func() { f, ferr = c.img.Footer() }) != nil {
		ferr = nil // gone with the file's end: the usual look at what follows
	} else if c.quiet && ferr == nil {
		return r.sealedTail(c, f)
	}
	if errors.Is(ferr, segment.ErrSealUnfinished) {
		// A footer is stored only once every frame up to END is
		// committed, and the magic last: zeros where frames or END
		// should be, under part of a footer, were lost (a power loss
		// under SyncNone, or damage), as verify's missing-end says,
		// whether or not a writer is alive or a segment follows. Unless
		// the walk ran before the frames were written and the seal began
		// after it: the zeros are looked at again, after the footer.
		if !c.quiet && !r.stillZero(c) {
			return r.err == nil // written since: read it as usual
		}
		d := Damage{Kind: DamageTorn, Path: c.path, Seq: c.seq, Offset: c.off,
			Len: segment.RecordLimit(int64(len(c.img.Data))) - c.off,
			Err: &segment.CorruptError{Path: c.path, Offset: c.off,
				Reason: "no END frame, though the segment's footer was being stored (it is stored once END is committed): frames lost from here"}}
		if !r.report(d) {
			return false
		}
		r.finish()
		return true
	}
	if r.single == "" {
		if err := r.refresh(); err != nil {
			r.stop(err)
			return false
		}
		// Quiet: no writer adds to c (a later segment is sealed, or c's
		// footer is damaged), whatever the later files' first frames are.
		if r.entryAfter(c.seq) < len(r.list) && (!r.opts.Follow || c.quiet || r.laterHasFrames(c.seq) || !r.alive && r.laterHoldsBytes(c.seq)) {
			// Segments are sealed in order, and recovery seals only those
			// after the newest sealed one (countsSealed): with a later one
			// sealed, no writer died leaving c unfinished, c lost its end
			// (as verify's missing-end says), even if nothing is left after
			// its header.
			// An archive's lost blocks were reported already. Looked at
			// before stillZero: a recovery that sealed c (then the empty
			// segments after it) between stillZero and this look would
			// make c's tail, zeros when stillZero looked, read as damage.
			// And after the later segments were looked at: a writer
			// makes c's name again before a later one holds frames.
			if r.remade(c, true) {
				return r.err == nil
			}
			torn := c.img.Lost() == 0 && r.laterAny(c.seq, len(r.list), r.countsSealed)
			if !c.quiet && !r.stillZero(c) {
				return r.err == nil // written since: read it as usual
			}
			// Nothing tells where records stopped: the rest of the record
			// area may have held some. Reported from offset 64 too: a
			// segment with nothing after its header is what verify and
			// recovery take it for, crash residue (writer.Open seals it,
			// as it is not the newest) or, before a sealed one, damage.
			rest := segment.RecordLimit(int64(len(c.img.Data))) - c.off
			d := Damage{Kind: DamageUnfinished, Path: c.path, Seq: c.seq, Offset: c.off, Len: rest}
			if torn {
				d.Kind, d.Err = DamageTorn, &segment.CorruptError{Path: c.path, Offset: c.off,
					Reason: "neither END frame nor footer, and a later segment is sealed"}
			} else {
				r.notLeftover(c, &d)
			}
			if !r.report(d) {
				return false
			}
			r.finish()
			return true
		}
	}
	if !r.opts.Follow {
		r.done = true
		return false
	}
	c.parked, c.parkAlive = true, r.alive
	return false
}

// stillZero reports whether c still holds only zeros from c.off to the
// record limit, as the walk that led to atTail found, now that a later
// segment is listed (and, following, found to hold frames or bytes). That
// look came after the walk and the check that no writer held the lock: a
// writer that took the lock in between may have continued in c (recovery
// continues in the newest segment when it holds nothing, such as the one a
// closing writer leaves), filled it and gone on into the next, and passing
// c would skip every record it wrote there; whether it still holds the
// lock does not tell, it may have closed again. Looking at c after the
// later segments does: a writer that continued in c wrote there before it
// wrote after it, and once a later segment holds bytes no writer continues
// in c. A replay (no Follow) needs it as much as a follower: one that
// passed c would skip those records, and a cursor stored after them would
// make every later run skip them too. Only where c is not quiet: a later
// sealed segment, or a footer, already rules a writer out. Events found
// are dropped, not reported: a writer may hold the lock now, and the usual
// walk reads c again, then ends at the first slot still pending if a
// writer holds the log, as a replay does at the tail of a live log.
func (r *Reader) stillZero(c *seg) bool {
	stop, ok := r.walk(c, segment.Quiescent, true)
	if !ok {
		return false // reported; c is finished
	}
	zero := len(r.evs) == 0 && stop.Kind == segment.EvTail
	r.evs = r.evs[:0]
	return zero
}

// sealedTail handles zeros from c.off to the record limit in a sealed
// segment: its END frame is gone. The footer is written only after every
// frame up to END is committed, so zeros before END are committed frames
// lost (torn, as verify reports them), whether or not a later segment
// exists. Only the END frame lost costs no record, but the segment is
// still not what its writer sealed. The segment is finished either way.
func (r *Reader) sealedTail(c *seg, f segment.Footer) bool {
	rest := segment.RecordLimit(int64(len(c.img.Data))) - c.off
	if !r.report(Damage{Kind: DamageTorn, Path: c.path, Seq: c.seq, Offset: c.off, Len: rest,
		Err: &segment.CorruptError{Path: c.path, Offset: c.off, Reason: segment.LostEnd(c.off, f.EndOffset)}}) {
		return false
	}
	r.finish()
	return true
}

// unpark reports whether a parked segment may have changed: the commit
// word at its offset was stored, a writer took or left the lock, or a
// later segment appeared.
func (r *Reader) unpark(c *seg) bool {
	var l int32
	if err := segment.Guard(c.img.Data, func() { l = segment.LoadLength(c.img.Data, c.off) }); err != nil || l != 0 {
		c.parked = false
		return true
	}
	if time.Since(r.aliveAt) < aliveEvery {
		return false
	}
	if r.refreshAlive() != c.parkAlive || r.laterExists(c.seq) {
		c.parked = false
		return true
	}
	return false
}

// finish closes the current segment: the reader has moved past it.
func (r *Reader) finish() {
	r.passStart()
	_ = r.closeCur()
}

// passStart is called when the reader leaves a segment, read to its end,
// unreadable or gone. Records still to skip for a Last start are the
// start segment's surplus (locateLast): none of them is in the next
// segment, whatever the start segment turned out to hold (a file
// truncated since it was counted holds fewer).
func (r *Reader) passStart() {
	if r.opts.Start.kind == startLast {
		r.skip = 0
	}
}

// eventDamage returns the damage a walk event of segment seq, at path,
// reports, if any.
func eventDamage(path string, seq uint64, ev *segment.Event) (Damage, bool) {
	d := Damage{Path: path, Seq: seq, Offset: ev.Offset, Len: ev.Len, Err: ev.Frame.Err}
	switch ev.Kind {
	case segment.EvReserved:
		d.Kind = DamageReserved
	case segment.EvGap:
		d.Kind = DamageGap
	case segment.EvTorn:
		d.Kind = DamageTorn
	default:
		return Damage{}, false
	}
	d.zeros = ev.Frame.State == segment.Unwritten
	return d, true
}
