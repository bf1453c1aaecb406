package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Bulk (Options.Bulk) has the records of sealed segments formatted on
// several goroutines while a reader catches up, instead of returned one by
// one by Next. A replay of a long log is then bound by how fast the cores
// together check CRCs and copy payloads, not by one of them.
//
// The reader splits each sealed segment it comes to into ranges of a few
// MiB; Workers goroutines walk them with the segment decoder and call
// Append for each record, and the goroutine calling Next hands the results
// to Write in position order, with the damage reports (OnDamage) between
// them exactly where a record-by-record read puts them. Output is the same
// byte for byte as calling Append on the fields of each record Next
// returns (Time.UnixNano() for the time): records in
// position order, each once. Only sealed segments (a footer that decodes,
// a header that agrees with the file) read from the start of the segment
// are formatted in bulk; the first segment of a read that starts at a
// position or after skipping records, unsealed or damaged segments, the
// live segment and everything a follower waits for are read by Next as
// without Bulk. A range whose start cannot be told without reading the one
// before (damage across the boundary) is read again in order, so damage
// costs speed, never correctness. Memory stays bounded: a few ranges are
// in flight at a time. Append and Write are required: Open refuses a Bulk
// without either, with an error wrapping os.ErrInvalid.
type Bulk struct {
	// Workers is how many goroutines decode and format; 0 means
	// GOMAXPROCS. More than maxBulkWorkers (256) are taken as that many:
	// each worker's ranges are buffered, and a count beyond any machine
	// (an overflowed computation) would ask for terabytes.
	Workers int
	// Append appends the output for one record to dst and returns it: the
	// record's position, time (Unix nanoseconds) and payload, its fields
	// passed in registers rather than a Record built in memory, and no
	// time.Time computed for outputs that have no use for it. It is called
	// from several goroutines at once, so it must not change shared state.
	// payload is valid only during the call and must not be written to.
	Append func(dst []byte, pos Position, unixNano int64, payload []byte) []byte
	// Range is how many bytes of a segment each work item covers, rounded
	// up to a multiple of 8; 0 means 2 MiB. The output of about three
	// ranges per worker is held at a time.
	Range int64
	// Write is handed the output in position order, from the goroutine
	// calling Next, with the position of the last record in p. p is reused
	// after Write returns. An error stops the reader: Next returns false and
	// Err returns the error. It may call Close, which stops the reader
	// there: Write is not called again (see Close).
	Write func(p []byte, last Position) error
}

// maxBulkWorkers caps Bulk.Workers: past the number of cores, more
// workers only hold more output in memory.
const maxBulkWorkers = 256

const (
	// bulkChunk is the default Bulk.Range: large enough that each range
	// costs one write and a handful of channel operations, small enough
	// that a few in flight per worker stay a few MiB of output.
	bulkChunk = 2 << 20
	// bulkAhead is how many ranges per worker may be in flight (being
	// decoded, or decoded and waiting for their turn to be written).
	bulkAhead = 2
)

// Stop reasons of a range walk.
type bulkStop uint8

const (
	stopNext  bulkStop = iota // reached the next range: it starts at end
	stopEnd                   // the END frame: the segment is finished
	stopLimit                 // the record limit: the segment is finished
	stopTail                  // zeros up to the limit at end: Next decides
)

// bulkSeg is one segment of a bulk run.
type bulkSeg struct {
	e  segment.Entry
	im *segment.Image
	// Only for the last item of a run: the segment Next must open itself
	// (not sealed, or not usable), with what opening it gave.
	handBack bool
	err      error
	skip     bool // every record is older than Since (by its footer)
	closed   bool // im was closed (by the consumer)
	// released is closed with im, by release: the planner waits for it
	// before it decompresses the next archive.
	released chan struct{}
}

// release closes s's image, once.
func (s *bulkSeg) release() {
	if s.closed || s.im == nil {
		return
	}
	s.closed = true
	s.im.Close()
	close(s.released)
}

// bulkItem is one range of a segment, or a whole segment skipped or handed
// back. Items reach the consumer in position order.
type bulkItem struct {
	seg          *bulkSeg
	first, final bool  // first and last range of seg
	from, to     int64 // the range: frames starting in [from, to)
	done         chan struct{}

	// Results, set by the worker before done is closed.
	start int64 // where the first event found starts
	end   int64 // where the walk stopped
	stop  bulkStop
	// fault: the mapping faulted (read the range again in order), or a
	// copy of it failed its CRC, where changedAt and changedEnd are that
	// record's frame (out holds what comes before it).
	fault                 error
	changedAt, changedEnd int64
	buf                   []byte // the run's buffer out started in
	out                   []byte
	marks                 []bulkMark
	last                  Position // of the last record in out
}

// bulkMark is a damage report due after out[:at].
type bulkMark struct {
	at   int
	last Position
	d    Damage
}

// bulkRun is one bulk read over consecutive listed segments.
type bulkRun struct {
	b       *Bulk
	since   int64
	entries []segment.Entry
	first   *prefetch // the reader's prefetch of entries[0], if any
	order   chan *bulkItem
	work    chan *bulkItem
	free    chan []byte // output buffers not in use
	mu      sync.Mutex
	bufs    [][]byte // every output buffer allocated, for Unmap
	quit    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context // the reader's (OpenContext)
}

// bulkReady reports whether the next segment may be read in bulk: the read
// starts at a segment's first record, with nothing left to skip.
func (r *Reader) bulkReady(i int) bool {
	return r.opts.Bulk != nil && r.seek == nil && r.skip == 0 && i < len(r.list) && (r.single == "" || singleNamed(r.single)) &&
		(r.end == nil || r.single == "" && r.list[i].Seq < r.end.Seq)
}

// bulkEntries returns the listed segments from index i that a bulk run
// may read: with an end (Last), only those before the segment it is in,
// which may hold records committed after it, read in order by Next (and
// bulkReady leaves a single file to Next).
func (r *Reader) bulkEntries(i int) []segment.Entry {
	l := r.list[i:]
	if r.end != nil {
		l = l[:sort.Search(len(l), func(k int) bool { return l[k].Seq >= r.end.Seq })]
	}
	return append([]segment.Entry(nil), l...)
}

// checkBulk refuses a Bulk without Append or Write at Open rather than
// where they are called: Append is called on a worker goroutine, where a
// nil one panics out of the caller's reach and kills the process.
func checkBulk(b *Bulk) error {
	if b == nil || b.Append != nil && b.Write != nil {
		return nil
	}
	missing := "Append"
	if b.Append != nil {
		missing = "Write"
	}
	return fmt.Errorf("reader: Options.Bulk without Bulk.%s: %w", missing, os.ErrInvalid)
}

// singleNamed reports whether a single segment file is named like one: its
// positions then use the name's sequence, which the bulk path checks the
// header against (a file named otherwise is read by Next, which takes the
// header's).
func singleNamed(path string) bool {
	_, _, ok := segment.ParseName(filepath.Base(path))
	return ok
}

// bulk reads listed segments from index i in bulk for as long as they are
// sealed. It returns how many it read (or skipped). When it stops at a
// segment it did not read, that segment is left for openSeg (its image as
// a finished prefetch); when a range must be read in order, r.cur is set
// to its segment at that offset.
func (r *Reader) bulk(i int) int {
	// Marked as a callback is: its workers call Bulk.Append.
	if !r.enter() {
		return 0
	}
	defer r.leave()
	b := *r.opts.Bulk
	if b.Workers <= 0 {
		b.Workers = runtime.GOMAXPROCS(0)
	}
	b.Workers = min(b.Workers, maxBulkWorkers)
	if b.Range <= 0 {
		b.Range = bulkChunk
	}
	b.Range = segment.Align(min(b.Range, segment.MaxSegmentSize))
	run := &bulkRun{
		b:       &b,
		since:   r.since,
		entries: r.bulkEntries(i),
		order:   make(chan *bulkItem, bulkAhead*b.Workers),
		work:    make(chan *bulkItem, bulkAhead*b.Workers),
		free:    make(chan []byte, bulkAhead*b.Workers+2),
		quit:    make(chan struct{}),
		ctx:     r.ctx,
	}
	if p := r.pre; p != nil {
		r.pre = nil
		if p.seq == run.entries[0].Seq && p.path == run.entries[0].Path {
			run.first = p
		} else {
			<-p.done
			if p.err == nil {
				p.im.Close()
			}
		}
	}
	run.wg.Add(1 + b.Workers)
	go run.plan()
	for range b.Workers {
		go run.worker()
	}
	defer func() { // also when a callback panics (see collect)
		for _, b := range run.bufs {
			_ = segment.Unmap(b)
		}
	}()
	return r.collect(run)
}

// collect takes the items of run in order, writes their output and reports
// their damage, until the run ends or must stop. It returns how many
// segments it finished.
func (r *Reader) collect(run *bulkRun) int {
	var (
		seg      *bulkSeg
		expect   int64 // where the next range of seg must start
		finished bool  // seg's END (or limit) was met
		n        int
	)
	// stop ends the run: the planner and workers finish what they hold,
	// and every image the run opened is closed but keep's (r.cur's now).
	// A callback (Write, OnDamage) that panics or exits its goroutine
	// stops it too: a caller that recovers can still Close, and the
	// planner and workers would otherwise block for good, holding images
	// and descriptors that Close does not know of.
	ended := false
	stop := func(keep *bulkSeg) {
		ended = true
		close(run.quit)
		var held []*bulkSeg
		if seg != nil {
			held = append(held, seg)
		}
		for it := range run.order {
			<-it.done
			if len(held) == 0 || held[len(held)-1] != it.seg {
				held = append(held, it.seg)
			}
		}
		run.wg.Wait()
		for _, s := range held {
			if s != keep {
				s.release()
			}
		}
	}
	defer func() {
		if !ended {
			stop(nil)
		}
	}()
	for it := range run.order {
		<-it.done
		s := it.seg
		if s.handBack {
			// The reader opens it as usual, with the image opened here.
			done := make(chan struct{})
			close(done)
			r.pre = &prefetch{seq: s.e.Seq, path: s.e.Path, done: done, im: s.im, err: s.err}
			seg = nil
			stop(nil)
			return n
		}
		if it.first {
			seg, expect, finished = s, segment.HeaderSize, false
			if r.stopIfRestarted() || !r.arrive(s.e.Seq) {
				stop(nil)
				return n
			}
			if m := markOf(s.e.Seq, s.im); m.ok {
				r.left = m // sealed: it holds its END frame
				r.keepHeader(m, s.im)
			}
			if s.skip {
				n++
				continue
			}
		}
		if !finished {
			if it.changedEnd > 0 && it.start == expect {
				// A record the walk checked, changed since: reported as
				// Next's caller finds it (AppendPayload), not as what
				// reading it again would find, damage of the log (torn
				// over the zeros a cut leaves in its page) where its
				// bytes may be whole again by the next read. The rest is
				// read in order after it, as the file is now.
				d := Damage{Kind: DamageSegment, Path: s.e.Path, Seq: s.e.Seq, Offset: it.changedAt, Len: it.changedEnd - it.changedAt, Err: it.fault}
				if !r.emit(it) || !r.report(d) {
					stop(nil)
					return n
				}
				r.resume(s, it.changedEnd)
				stop(s)
				return n
			}
			// A fault is not reported here: the range is read again in
			// order, from its start, as the file is now, and that walk
			// reports what it finds once; a report here too would be the
			// same damage twice.
			if it.fault != nil || it.start != expect {
				r.resume(s, expect)
				stop(s)
				return n
			}
			if !r.emit(it) {
				stop(nil)
				return n
			}
			switch it.stop {
			case stopNext:
				expect = it.end
			case stopTail:
				r.resume(s, it.end)
				stop(s)
				return n
			default:
				finished = true
			}
		}
		run.recycle(it) // written, or not to be
		if it.final {
			if !finished {
				r.resume(s, expect) // a footer that disagrees with the frames
				stop(s)
				return n
			}
			s.release()
			n++
		}
	}
	ended = true
	run.wg.Wait()
	return n
}

// buffer returns an output buffer for a worker: one in huge pages, since
// touching a fresh 4 KiB page for the first time costs microseconds on the
// VMs we run on, and buffers are few and reused for the whole run.
func (run *bulkRun) buffer() []byte {
	select {
	case b := <-run.free:
		return b
	default:
	}
	if b := run.alloc(int(run.b.Range)); b != nil {
		return b[:0]
	}
	return make([]byte, 0, run.b.Range)
}

// alloc returns size bytes in huge pages, unmapped when the run ends, or
// nil if there is no memory for it.
func (run *bulkRun) alloc(size int) []byte {
	b, err := segment.AllocHuge(size)
	if err != nil {
		return nil
	}
	run.mu.Lock()
	run.bufs = append(run.bufs, b)
	run.mu.Unlock()
	return b
}

// recycle makes it's buffer available again; it must no longer be used.
// The consumer calls it as soon as it has written the output, which it
// copies nothing from afterwards (out may be a larger copy of buf grown by
// Append: that one is left to the garbage collector).
func (run *bulkRun) recycle(it *bulkItem) {
	if it.buf == nil {
		return
	}
	select {
	case run.free <- it.buf[:0]:
	default:
	}
}

// emit writes an item's output and reports its damage in order. It
// returns false when the reader must stop.
func (r *Reader) emit(it *bulkItem) bool {
	at := 0
	for _, m := range it.marks {
		if m.at > at {
			if !r.write(it.out[at:m.at], m.last) {
				return false
			}
			at = m.at
		}
		if !r.report(m.d) {
			return false
		}
	}
	return at == len(it.out) || r.write(it.out[at:], it.last)
}

// write hands p to Bulk.Write, marked as onDamage marks OnDamage, and
// reports whether the reader goes on: not after an error, nor after a
// Close (from Write, or from another goroutine during a Wait, which a
// long catch-up in bulk would otherwise keep waiting). A Close from
// another goroutine that returned before is the last call the user sees:
// Write is not called after it.
func (r *Reader) write(p []byte, last Position) bool {
	if !r.enter() {
		return false
	}
	err := func() error {
		defer r.leave()
		return r.opts.Bulk.Write(p, last)
	}()
	if err != nil {
		// After a Close during Write (from it, or from another goroutine
		// in a Wait), the Close stopped the reader first: ErrClosed, and
		// the segments released as Next returns, as when Write returns nil.
		if !r.stopForClose() {
			r.stop(err)
		}
		return false
	}
	return !r.stopForClose()
}

// resume makes the reader go on in order in s at offset off, as if it had
// read s up to there itself.
func (r *Reader) resume(s *bulkSeg, off int64) {
	r.cur = &seg{path: s.e.Path, img: s.im, seq: s.e.Seq, seed: segment.FrameSeed(s.im.Header.Seq), mark: markOf(s.e.Seq, s.im), off: off, quiet: true, footer: true}
	s.closed = true // r.cur owns the image now
}
