package verify

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// The frame walk of one segment: every frame checked with the shared
// walker (segment.Walk), its fast path (segment.ScanCheckIn) and the window
// (window.go), and the findings the frames make.

// eventBufs holds the walks' event buffers (25 KiB each), reused from one
// segment to the next: allocated per segment, they were most of what
// verify allocates, garbage that grew its peak memory with the number of
// segments until the first collection.
var eventBufs = sync.Pool{New: func() any { s := make([]segment.Event, 0, 256); return &s }}

// walk checks every frame with the shared walker and collects findings.
func (c *checker) walk() {
	r := c.r
	r.walked = true
	c.timeBounds()
	frames := 0 // frames met, counted loosely: only whether any were matters
	limit := segment.RecordLimit(int64(len(c.img)))
	// WalkBatch decodes the events in place; a callback would be handed a
	// copy of each, which costs more than the frame's CRC.
	bp := eventBufs.Get().(*[]segment.Event)
	evs := (*bp)[:0]
	defer func() {
		clear(evs[:cap(evs)]) // no payload of this segment kept alive
		*bp = evs[:0]
		eventBufs.Put(bp)
	}()
	// The common case first, without events: committed DATA and PAD
	// frames (ScanCheckIn makes every check the walk does); the walk takes
	// over at the first slot that is anything else.
	scan := c.valid == int64(len(c.img))
	w := c.win
	// A segment not sealed is read through its mapping (a writer may
	// still fill it: no window), and what the walk passed stayed mapped
	// until the check ended: a live log's active segment cost its whole
	// size in resident memory. The blocks it has left are released by
	// c.zeros, the window over that mapping (window.release); the scan
	// goes a block at a time for it.
	blocked := w == nil && c.zeros != nil && c.zeros.im != nil && !r.sealed
	leave := func(off int64) {
		if blocked {
			c.zeros.release(c.img, off)
		}
	}
	for off := int64(segment.HeaderSize); ; {
		if scan {
			var next int64
			if w != nil {
				next = w.scan(c.seq, int64(len(c.img)), off, limit, c.img, &c.t, c.dataFindings)
			} else {
				for next = off; ; {
					to := limit
					if blocked {
						to = min(limit, next&^(segment.ReleaseBlock-1)+segment.ReleaseBlock)
					}
					n := segment.ScanCheckIn(c.img, 0, int64(len(c.img)), c.seq, next, to, &c.t, c.dataFindings)
					leave(n)
					if next = n; n < to || to == limit {
						break
					}
				}
			}
			if next > off {
				frames++ // at least one (PAD frames are passed silently)
				off = next
				c.resumed = true
			}
		}
		if w != nil {
			// The walker reads the slot at off through the mapping: the
			// blocks the window has left go first, as before the window's
			// next read (window.readAtBlockEnd). The END frame in the
			// block after a copy's held two.
			w.release(c.img, off)
		} else {
			leave(off)
		}
		if c.zeroTail(off, limit) {
			break
		}
		batch := evs[:0]
		if w != nil && int64(segment.LoadLength(c.img, off)) > int64(len(w.buf)) {
			// A frame larger than the window, alone: the window moves past
			// it before the next is read, and releases it (window.release).
			// A batch of such frames, read through the mapping, held them
			// all at once: a segment of them, whole.
			batch = evs[:0:1]
		} else if scan && blocked {
			// Walked through the mapping, the slot ScanCheckIn stopped at
			// alone: the frames after it are ScanCheckIn's again, a block
			// at a time. A batch of large ones held many blocks at once.
			batch = evs[:0:1]
		}
		batch, _ = segment.WalkBatch(c.img, c.seq, off, c.mode(), c.valid, batch)
		if len(batch) == 0 {
			break // the record limit
		}
		for i := range batch {
			c.event(&batch[i], limit, &frames)
		}
		last := &batch[len(batch)-1]
		if last.Kind.Ends() {
			break
		}
		off = last.Offset + last.Len
	}
	r.empty = frames == 0 && r.dataEnd == segment.HeaderSize
	if w == nil {
		// The bytes after END of a segment not sealed: through c.zeros,
		// as zeroTail reads zeros, not the mapping, where they stayed
		// resident (a segment finished early, nearly all of it).
		w = c.zeros
	}
	c.afterEnd(limit, w)
	r.rep.Records = c.t.Records
	r.rep.EndOffset = r.endAt
}

// afterEnd reports non-zero bytes after the END frame, if one was met, up
// to the record limit or the end of what could be read (c.valid), read
// through w if not nil.
func (c *checker) afterEnd(limit int64, w *window) {
	r := c.r
	if !r.hasEnd {
		return
	}
	from := r.endAt + segment.FrameHeaderSize
	to := min(limit, c.valid)
	var p int64
	if w != nil {
		p = w.zeroFrom(c.img, from, to)
	} else {
		p = segment.ZeroFrom(c.img, from, to)
	}
	if p < to {
		upto := "the record limit"
		if to < limit {
			upto = "the end of what could be read" // a cut file's end, or a damaged archive's loss: reported on its own
		}
		c.addFound(c.finding(GarbageAfterEnd, p, to-p,
			fmt.Sprintf("non-zero bytes after the END frame at %d (first at offset %d, %d bytes to %s)", r.endAt, p, to-p, upto)), false)
	}
}

// zeroTail reports whether everything from off to the record limit is
// zero, read through c.zeros, and if so records it as the walker would
// (EvTail). The walker would read it through the mapping: for the segment
// a writer prepares ahead, 64 MiB of zeros, which mapped would stay
// resident until the check ends, so verify's memory would grow with the
// segment size rather than with its window.
func (c *checker) zeroTail(off, limit int64) bool {
	w := c.zeros
	if w == nil || c.valid != int64(len(c.img)) || off < segment.HeaderSize || off%segment.Alignment != 0 ||
		off > limit-segment.FrameHeaderSize || segment.LoadLength(c.img, off) != 0 {
		return false
	}
	if w.zeroFrom(c.img, off, limit) < limit {
		return false // the walker judges what is there
	}
	c.event(&segment.Event{Kind: segment.EvTail, Offset: off, Len: limit - off,
		Frame: segment.Frame{Offset: off, State: segment.Unwritten}}, limit, new(int))
	return true
}

// mode is how the walk reads the segment: Sealed when its footer is valid
// (a claim or zeros where frames should be are then damage, torn, not a
// dead writer's leftovers, which recovery would never have sealed).
func (c *checker) mode() segment.WalkMode {
	if c.r.sealed {
		return segment.Sealed
	}
	return segment.Quiescent
}

// event takes one walk event.
func (c *checker) event(ev *segment.Event, limit int64, frames *int) {
	r := c.r
	switch ev.Kind {
	case segment.EvFrame:
		*frames++
		c.resumed = true
		if ev.Frame.Type == segment.TypeData {
			if n := int64(ev.Frame.Length); !c.t.Add(c.img, 0, ev.Offset+n, ev.Frame.Time) {
				c.dataFindings(ev.Offset, n, ev.Frame.Time)
			}
		}
	case segment.EvEnd:
		*frames++
		c.resumed = true
		r.hasEnd, r.endAt = true, ev.Offset
	case segment.EvReserved:
		reason := fmt.Sprintf("frame reserved (length %d) and never committed; %d bytes skipped", ev.Frame.Length, ev.Len)
		if why := c.refuseAt(ev); why != nil { // a damaged END claim
			reason = fmt.Sprintf("%s; %d bytes skipped", segment.DamagedEndClaim(ev.Offset, why.Offset), ev.Len)
		}
		r.unfinished.add(c.finding(Unfinished, ev.Offset, ev.Len, reason))
		c.damage = true
	case segment.EvGap:
		r.unfinished.add(c.finding(Unfinished, ev.Offset, ev.Len,
			fmt.Sprintf("%d zero bytes before the next frame: space claimed by writers that never stored their claim", ev.Len)))
		c.damage = true
		c.refuseAt(ev)
	case segment.EvTorn:
		c.torn(ev, limit)
	case segment.EvTail:
		r.dataEnd = ev.Offset
	}
}

func (c *checker) torn(ev *segment.Event, limit int64) {
	reason := "damaged frame"
	var ce *segment.CorruptError
	if errors.As(ev.Frame.Err, &ce) {
		reason = ce.Reason
	} else if ev.Frame.State == segment.Unwritten {
		reason = "zero length word followed by bytes that are not a frame"
	}
	next := ev.Offset + ev.Len
	if next >= limit {
		reason += fmt.Sprintf("; %d bytes unattributed up to the record limit", ev.Len)
	} else {
		reason += fmt.Sprintf("; %d bytes unattributed, resumed at the frame at %d", ev.Len, next)
	}
	if end := c.r.footer.EndOffset; c.r.sealed && end >= ev.Offset && end < next {
		c.endTorn = true
	}
	c.addFound(c.finding(Torn, ev.Offset, ev.Len, reason), true)
	if c.refuseAt(ev) == nil && c.r.footerAbsent {
		c.tornTail(ev, reason)
	}
}

// tornTail notes ev, an EvTorn recovery passes, with the finding reason
// made for it: a torn tail of a segment without a footer, crash residue
// recovery puts under a PAD before the END it writes
// (segment.Refusal.TornTail; FORMAT.md section 8, step 3.5). It stays a
// torn finding unless the log finds the segment in a dead writer's crash
// tail (log.go), where it becomes residue, unfinished: elsewhere no
// recovery finishes it, and a live writer's may be a frame being stored
// (liveSuspects rechecks it). A segment with a footer, valid or damaged,
// was sealed: its torn bytes are damage.
func (c *checker) tornTail(ev *segment.Event, reason string) {
	f := c.finding(Unfinished, ev.Offset, ev.Len,
		"torn tail: a committed frame an interrupted flush tore; nothing intact follows it; writer.Open puts it under a PAD before its END frame ("+reason+")")
	c.r.tornTail = &f
}

// timeBounds sets the range of record timestamps that the tally (c.t)
// accepts without a look at dataFindings: all of them unless
// Options.TimeTolerance and the header say otherwise.
func (c *checker) timeBounds() {
	c.t.TimeLo, c.t.TimeHi = math.MinInt64, math.MaxInt64
	if tol := int64(c.o.TimeTolerance); tol >= 0 && c.known {
		// Saturating: a huge tolerance, or a forged creation or sealing
		// time near the ends of int64, must not wrap around.
		if c.created >= math.MinInt64+tol {
			c.t.TimeLo = c.created - tol
		}
		if c.r.sealed && c.r.footer.SealedAt <= math.MaxInt64-tol {
			c.t.TimeHi = c.r.footer.SealedAt + tol
		}
	}
}

// dataFindings makes the findings for a record the tally (RecordTally.Add)
// did not pass: its padding, its time, or both. Never inlined, so that the
// per-record path stays small.
//
//go:noinline
func (c *checker) dataFindings(off, length, ts int64) {
	end, ext := off+length, off+segment.Align(length)
	if p := segment.ZeroFrom(c.img, end, ext); p < ext {
		c.addFound(c.finding(Torn, p, ext-p,
			fmt.Sprintf("non-zero byte in the alignment padding of the record at %d (the record itself is intact)", off)), true)
	}
	if c.o.TimeTolerance < 0 || !c.known {
		return
	}
	if ts < c.t.TimeLo {
		c.addFound(c.finding(Torn, off, 0, fmt.Sprintf("record timestamp %s is %v before the segment was created (%s)",
			fmtTime(ts), time.Duration(c.created-ts), fmtTime(c.created))), false)
	} else if ts > c.t.TimeHi {
		c.addFound(c.finding(Torn, off, 0, fmt.Sprintf("record timestamp %s is %v after the segment was sealed (%s)",
			fmtTime(ts), time.Duration(ts-c.r.footer.SealedAt), fmtTime(c.r.footer.SealedAt))), false)
	}
}

// parallelDigest is the segment size from which the digest is computed
// on its own goroutine; below it, the goroutine costs more than it saves.
const parallelDigest = 1 << 20
