package reader

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/auditseg/auditseg/pkg/segment"
)

// plan opens the run's segments in order and splits each sealed one into
// ranges, queued for the workers and, in the same order, for the consumer.
// It stops at the first segment that is not sealed or not usable (handed
// back to the reader), at the end of the listing, or when the run quits.
func (run *bulkRun) plan() {
	defer run.wg.Done()
	defer close(run.work)
	defer close(run.order)
	// held is the last archive handed to the consumer: a reader holds one
	// decompressed segment at a time, so the next archive waits for it.
	var held *bulkSeg
	for k, e := range run.entries {
		s := &bulkSeg{e: e, released: make(chan struct{})}
		if k == 0 && run.first != nil {
			<-run.first.done
			s.im, s.err = run.first.im, run.first.err
		} else {
			if held != nil && e.Archived {
				select {
				case <-held.released:
				case <-run.quit:
					return
				}
			}
			s.im, s.err = segment.OpenEntryContext(run.ctx, e)
		}
		f, ok := bulkSealed(s)
		if !ok {
			s.handBack = true
			if !run.send(&bulkItem{seg: s, first: true, final: true, done: closedChan}) && s.err == nil {
				s.im.Close()
			}
			return
		}
		if run.since > minTime && (f.Records == 0 || f.MaxTime < run.since) {
			s.im.Close()
			s.im, s.skip = nil, true
			if !run.send(&bulkItem{seg: s, first: true, final: true, done: closedChan}) {
				return
			}
			continue
		}
		archived := s.im.Archived // before split: the consumer may close s.im once it is queued
		if !run.split(s, f) {
			return
		}
		if archived {
			held = s
		}
	}
}

// closedChan is the done channel of items that need no work.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// bulkSealed reports whether s can be read in bulk: it opened, its header
// agrees with the file, and its footer decodes. The footer is the first
// read of the mapping since OpenImage's, and the image may be the
// reader's prefetch, opened while the segment before was read: if the
// file shrank since, the read faults, and s is handed back for openSeg to
// report.
func bulkSealed(s *bulkSeg) (segment.Footer, bool) {
	if s.err != nil || s.im.HeaderErr != nil || s.im.Check() != nil {
		return segment.Footer{}, false
	}
	var f segment.Footer
	var err error
	if s.im.Guard(func() { f, err = s.im.Footer() }) != nil {
		return f, false
	}
	return f, err == nil
}

// split queues the ranges of sealed segment s: chunk-aligned up to the
// one where the footer says END starts; that last one reaches the record
// limit, so the walk meets END wherever it really is.
func (run *bulkRun) split(s *bulkSeg, f segment.Footer) bool {
	limit := segment.RecordLimit(int64(len(s.im.Data)))
	endAt := min(max(f.EndOffset, segment.HeaderSize), limit)
	for from := int64(segment.HeaderSize); ; {
		to := (from/run.b.Range + 1) * run.b.Range
		last := to > endAt
		if last {
			to = limit
		}
		it := &bulkItem{seg: s, first: from == segment.HeaderSize, final: last, from: from, to: to, done: make(chan struct{})}
		if !run.send(it) {
			if it.first {
				s.im.Close() // the consumer never saw s
			}
			return false
		}
		// Never blocks: work has room for every item the consumer has not
		// finished with, and it was queued for the consumer first.
		run.work <- it
		if last {
			return true
		}
		from = to
	}
}

// send queues it for the consumer, or reports false if the run quits.
func (run *bulkRun) send(it *bulkItem) bool {
	select {
	case <-run.quit:
		return false
	default:
	}
	select {
	case run.order <- it:
		return true
	case <-run.quit:
		return false
	}
}

// worker walks the ranges it is given until the planner is done.
func (run *bulkRun) worker() {
	defer run.wg.Done()
	w := walkBufs{evs: make([]segment.Event, 0, batch)}
	var rd copier
	defer rd.close()
	for it := range run.work {
		select {
		case <-run.quit:
		default:
			it.buf = run.buffer()
			it.out = it.buf
			run.walk(it, rd.window(run, it), &w)
		}
		close(it.done)
	}
}

// walkBufs are a worker's buffers, reused from range to range.
type walkBufs struct {
	evs []segment.Event
	cp  []byte // the checked copy of a payload formatted from the mapping
}

// copier reads ranges of segment files into one buffer per worker with
// pread(2), for walking a copy rather than the mapping. On the VMs we run
// on, the first touch of each 4 KiB page of a fresh mapping of a file costs
// about a microsecond (a hypervisor entry, populated page tables or not),
// which made a replay of page-cache-resident segments spend more time
// touching pages than checking CRCs; the kernel copies the same bytes
// faster than that, into a buffer whose pages are touched once per run.
type copier struct {
	seg *bulkSeg
	f   *os.File // seg's file, or nil: read seg through its mapping
	buf []byte
}

// copySlack is how far past its range a window reaches (at most the range
// size again), so that a frame starting near the range's end is still
// wholly in it. Longer frames there are read through the mapping
// (ScanDataIn stops at them).
const copySlack = 64 << 10

// window returns it's range of its segment, read from the file: the bytes
// from it.from on (fewer at the end of the file). nil means the range is
// to be read through the mapping: an archive, a file that was renamed over
// or removed since it was mapped, a read error (which the mapping then
// reports its own way, or reads fine).
func (c *copier) window(run *bulkRun, it *bulkItem) []byte {
	s := it.seg
	if s != c.seg {
		c.close()
		c.seg = s
		if !s.im.Archived {
			c.f, _ = s.im.Reopen()
		}
	}
	if c.f == nil {
		return nil
	}
	slack := min(copySlack, run.b.Range)
	if c.buf == nil {
		c.buf = run.alloc(int(run.b.Range + slack))
		if c.buf == nil {
			return nil
		}
	}
	// The last range of a segment reaches the record limit, well past the
	// END frame; what does not fit is read through the mapping, if at all.
	n := min(it.to+slack, s.im.Valid(), it.from+int64(len(c.buf))) - it.from
	if n <= 0 {
		return nil
	}
	m, err := c.f.ReadAt(c.buf[:n], it.from)
	if m == 0 && err != nil {
		return nil
	}
	return c.buf[:m]
}

func (c *copier) close() {
	if c.f != nil {
		c.f.Close()
	}
	c.seg, c.f = nil, nil
}

// walk decodes the frames that start in it's range, formatting records
// and noting damage as the reader's consume does. A range other than a
// segment's first starts at the first offset where a committed frame's
// CRC matches (segment.Resync); the consumer checks that it is where the
// previous range ended, which is what makes the split exact.
//
// win, if not nil, holds the segment's bytes from it.from on, read from
// the file: frames wholly in it are decoded there and formatted from the
// bytes checked, the rest in the mapping. A mapped file cut inside a page
// reads as zeros from the cut to the end of that page, without a fault,
// so a payload checked in the mapping is formatted from a copy checked
// against the frame's CRC again (segment.AppendPayload); a copy that does
// not match ends the walk at that record, which the consumer reports as
// changed after its check (collect).
func (run *bulkRun) walk(it *bulkItem, win []byte, w *walkBufs) {
	s := it.seg
	im, seq := s.im, s.e.Seq
	pos := Position{Seq: seq}
	// Kept in locals while walking: it is shared with the consumer, so the
	// compiler would store through it for every record.
	out, last, since, appendRec := it.out, it.last, run.since, run.b.Append
	defer func() { it.out, it.last = out, last }()
	rec := func(o, ts int64, _ uint32, p []byte) {
		if ts >= since {
			pos.Offset = o
			out = appendRec(out, pos, ts, p)
			last = pos
		}
	}
	// mapped is rec for a payload in the mapping. An archive's image is
	// memory the reader owns: nothing can change it.
	mapped, changed, changedEnd := rec, int64(-1), int64(0)
	if !im.Archived {
		seed := segment.FrameSeed(im.Header.Seq)
		mapped = func(o, ts int64, crc uint32, p []byte) {
			if ts < since || changed >= 0 {
				return
			}
			var ok bool
			if w.cp, ok = segment.AppendPayload(w.cp[:0], seed, o, ts, crc, p); !ok {
				changed, changedEnd = o, o+segment.FrameSize(len(p))
				return
			}
			rec(o, ts, crc, w.cp)
		}
	}
	if !im.Archived && win == nil {
		// One call maps the range's pages (2 MiB folios, mostly) instead
		// of a fault for each, and a file that shrank only makes it fail.
		lo, hi := it.from&^(hugePage-1), min((it.to+hugePage-1)&^(hugePage-1), int64(len(im.Data)))
		_ = unix.Madvise(im.Data[lo:hi], unix.MADV_POPULATE_READ)
	}
	it.fault = segment.Guard(im.Data, func() {
		off := it.from
		if !it.first {
			ok := false
			if win != nil {
				off, ok = segment.ResyncIn(win, it.from, int64(len(im.Data)), im.Header.Seq, it.from-1)
			}
			if !ok {
				off = segment.Resync(im.Data, im.Header.Seq, max(off, it.from)-1)
			}
		}
		it.start = off
		whole := im.Valid() == int64(len(im.Data)) && im.HeaderErr == nil
		for {
			if whole {
				// The common case without events; WalkBatch below takes
				// over at the first slot that is not a DATA or PAD frame.
				if win == nil {
					off = segment.ScanData(im.Data, im.Header.Seq, off, it.to, mapped)
				}
				for win != nil && off < it.to && changed < 0 {
					off = segment.ScanDataIn(win, it.from, int64(len(im.Data)), im.Header.Seq, off, it.to, rec)
					if off >= it.to {
						break
					}
					// A frame the copy does not wholly hold: that one from
					// the mapping, then back to the copy.
					next := segment.ScanData(im.Data, im.Header.Seq, off, off+1, mapped)
					if next == off {
						break // not a DATA or PAD frame: the events below
					}
					off = next
				}
				if changed >= 0 {
					return
				}
				if off >= it.to {
					it.stop, it.end = stopNext, off
					return
				}
			}
			w.evs, _ = im.WalkBatch(off, segment.Sealed, w.evs[:0])
			evs := w.evs
			if len(evs) == 0 {
				it.stop, it.end = stopLimit, off
				return
			}
			for i := range evs {
				ev := &evs[i]
				if ev.Offset >= it.to {
					it.stop, it.end = stopNext, ev.Offset
					return
				}
				switch ev.Kind {
				case segment.EvFrame:
					if f := &ev.Frame; f.Type == segment.TypeData {
						if mapped(ev.Offset, f.Time, f.CRC, f.Payload); changed >= 0 {
							return
						}
					}
					off = ev.Offset + ev.Len
					continue
				case segment.EvEnd:
					it.stop, it.end = stopEnd, ev.Offset
					return
				}
				d, ok := eventDamage(s.e.Path, seq, ev)
				if !ok { // the tail: what follows is for Next to decide
					it.stop, it.end = stopTail, ev.Offset
					return
				}
				it.marks = append(it.marks, bulkMark{at: len(out), last: last, d: d})
				off = ev.Offset + ev.Len
			}
		}
	})
	// A fault after the change does not hide it: ScanData on the mapping
	// reads on to the range's end (past a record ending at a page
	// boundary, the next frame's header is past a cut there), and Next's
	// walk from after the record meets that fault again, as in order.
	if changed >= 0 {
		it.fault, it.changedAt, it.changedEnd = changedAfterCheck(s.e.Path, changed), changed, changedEnd
	}
}

// hugePage is the x86-64 PMD size: populate whole folios.
const hugePage = 2 << 20
