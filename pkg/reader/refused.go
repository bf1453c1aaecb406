package reader

import (
	"errors"
	"fmt"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A dead writer's reservations, zero gaps and missing END are crash
// leftovers only where writer.Open's recovery turns them into padding and
// an END. It leaves a segment unsealed, as it is, for a header that
// disagrees with the file, a torn committed frame, or an END claim with a
// non-zero byte behind its header (FORMAT.md section 8, steps 3.1, 3.2 and
// 3.4), and never repairs an archive (segment.Refusal), and verify then
// calls them fatal; nor does it look at a segment before a sealed one (it
// recovers what follows the newest sealed segment). The reason may lie
// after the leftover the reader is about to report (a frame torn further
// on), so the whole segment is judged, once, at its first leftover: never
// on a healthy log's path, and a segment is looked at only once its writer
// is gone.

// notLeftover makes d, a crash leftover of c (CrashLeftover), torn damage
// if recovery leaves c unsealed: nothing will pad or finish it.
func (r *Reader) notLeftover(c *seg, d *Damage) {
	why := r.refusal(c)
	if why == "" {
		return
	}
	var what string
	switch d.Kind {
	case DamageReserved:
		what = fmt.Sprintf("frame reserved and never committed (%d bytes)", d.Len)
	case DamageGap:
		what = fmt.Sprintf("%d zero bytes before the next frame", d.Len)
	default:
		what = "neither END frame nor footer"
		var ce *segment.CorruptError
		if errors.As(d.Err, &ce) {
			what = ce.Reason // a torn tail (tornTail)
		}
	}
	d.Kind = DamageTorn
	d.Err = &segment.CorruptError{Path: c.path, Offset: d.Offset,
		Reason: what + ", and writer.Open leaves the segment unsealed: " + why}
}

// refusal returns why writer.Open's recovery leaves c unsealed, or "" if
// it finishes and seals it: recovery's own judgment of the segment
// (segment.Refusal: its header, then a Quiescent walk), then whether a
// later segment is sealed as countsSealed counts it. The answer is kept:
// a segment recovery refuses keeps its bytes, a sealed segment stays
// sealed (or is archived), and one recovery seals was a dead writer's,
// as the reader found it (a later segment is sealed only after it). A
// walk that faults (the file cut since) decides nothing: the reader's own
// walk meets the cut and reports it.
func (r *Reader) refusal(c *seg) string {
	if c.refusalKnown {
		return c.refusal
	}
	judge := c.img.RecoveryRefusal()
	if judge.Refused() == nil {
		err := c.img.Guard(func() {
			c.img.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
				return judge.Event(&ev) == nil
			})
		})
		if err != nil {
			return ""
		}
	}
	why := ""
	if ce := judge.Refused(); ce != nil {
		why = ce.Reason
	} else {
		later, known := r.sealedAfter(c)
		if !known {
			return ""
		}
		if later {
			why = "a later segment is sealed, and recovery looks only after the newest sealed one"
		}
	}
	c.refusal, c.refusalKnown = why, true
	return why
}

// sealedAfter reports whether a later segment is sealed while c is not:
// recovery never looks at c. Looked at in that order: a recovery running
// now seals c before the segments after it, so c's footer is there once
// a later one is, and c's leftovers, buffered before, were padded. known
// is false when c's footer could not be read (the file cut since).
func (r *Reader) sealedAfter(c *seg) (later, known bool) {
	// An archive's lost blocks were reported already.
	if r.single != "" || c.img.Lost() > 0 || !r.laterAny(c.seq, len(r.list), r.countsSealed) {
		return false, true
	}
	var ferr error
	if c.img.Guard(func() { _, ferr = c.img.Footer() }) != nil {
		return false, false
	}
	return ferr != nil, true
}
