package writer

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Reservation is space for one record of a fixed size in the mapped file,
// obtained by Reserve. Fill Bytes, then Commit, or Abort to turn the space
// into padding. A Reservation must be committed or aborted exactly once,
// and Bytes must not be used after that. Hold it briefly: its segment
// cannot be sealed while it is open, and once the two segments after it
// fill, every Append waits for it (Close gives up after
// Options.CloseTimeout).
//
// A Reservation must not be copied (go vet's copylocks check reports a
// copy): pass a *Reservation. Committing or aborting a copy after the
// original was finished returns ErrReservationDone rather than writing
// over the record, but only while the segment is still mapped is that
// check certain to run before the write.
type Reservation struct {
	_    noCopy
	w    *Writer
	s    *seg
	off  int64
	n    int
	done bool
}

// noCopy makes go vet's copylocks check report copies of the struct that
// holds it (see sync.noCopy).
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Reserve claims space for a record of exactly n bytes and returns it for
// the caller to fill in place, saving the copy Append makes. A negative n
// is refused with an error wrapping os.ErrInvalid; one above the record
// limit with ErrTooLarge.
func (w *Writer) Reserve(n int) (Reservation, error) {
	if e := w.failed.Load(); e != nil {
		return Reservation{}, *e
	}
	if n < 0 {
		return Reservation{}, fmt.Errorf("%s: reserve %d bytes: %w: the size cannot be negative", w.dir, n, os.ErrInvalid)
	}
	if n > w.maxRecord {
		return Reservation{}, w.tooLarge(n)
	}
	size := segment.FrameSize(n)
	for {
		s := w.cur.Load()
		off := s.tail.Add(size) - size
		if off+size > s.dataLimit {
			if err := w.overflow(s, off); err != nil {
				return Reservation{}, err
			}
			continue
		}
		segment.StoreLength(s.data, off, -int32(segment.FrameHeaderSize+n))
		return Reservation{w: w, s: s, off: off, n: n}, nil
	}
}

// Bytes is the record's space in the mapped file, n bytes long; nil for
// the zero Reservation a failed Reserve returns, and once r was committed
// or aborted: a store through a slice asked for then would land on the
// committed record, past its CRC (a torn record, verify exit 1), or on
// the padding, and a slice taken before must not be used after either.
// The caller's stores into it are beyond the writer's fault guard: if the
// segment file was truncated under the writer, one past the cut kills the
// process (SIGBUS).
func (r *Reservation) Bytes() []byte {
	if r.s == nil || r.done {
		return nil
	}
	start := r.off + segment.FrameHeaderSize
	return r.s.data[start : start+int64(r.n) : start+int64(r.n)]
}

// Position is where the record is (valid before Commit); the zero
// Position for the zero Reservation a failed Reserve returns.
func (r *Reservation) Position() Position {
	if r.s == nil {
		return Position{}
	}
	return Position{Seq: r.s.seq, Offset: r.off}
}

// Commit checksums and commits the record. With SyncAlways it returns once
// the record is durable; an error wrapping ErrNotDurable means the record
// was committed but its flush failed or met a Close that gave up or failed
// (that error is wrapped too). After Close it fails with ErrClosed: the
// record is not in the log, unless the error also wraps ErrMaybeLost (Close
// gave up on the reservation as it was committed).
func (r *Reservation) Commit() error {
	if err := r.finishing(); err != nil {
		return err
	}
	img, length := r.s.data, int32(segment.FrameHeaderSize+r.n)
	ts := r.w.clock.now()
	segment.PutFrameHeader(img[r.off:], segment.TypeData, length, ts)
	segment.PutFrameCRC(img[r.off:], r.s.seed, r.off)
	// Fenced, then detached read: if Close gave up on this reservation
	// after finishing's check (the CRC of a large record takes a while),
	// either this store reached the file before Close set detached and cut
	// the mapping off it, or the load sees detached and the record may not
	// be in the log. Append does the same with its plain release store
	// (why that suffices on amd64: committedAsClosed); Commit, off the
	// hot path, takes the fence rather than rely on that argument too.
	segment.StoreLengthFenced(img, r.off, length)
	if r.s.detached.Load() {
		return r.w.committedAsClosed(r.Position())
	}
	r.w.yieldEvery(r.s, r.off, segment.FrameSize(r.n))
	if r.w.opts.Sync == SyncAlways {
		return r.w.syncCommitted(r.Position())
	}
	return nil
}

// Abort gives the space back as a PAD frame, which readers skip.
func (r *Reservation) Abort() (err error) {
	// Guarded (guard.go): its stores, and finishing's read, may be the
	// first to meet a file cut under the writer.
	defer r.w.unguard(r.s, &err, debug.SetPanicOnFault(true))
	if err := r.finishing(); err != nil {
		return err
	}
	segment.PutPad(r.s.data, r.s.seq, r.off, segment.FrameSize(r.n))
	return nil
}

// finishing marks r done and says whether its frame may still be written.
func (r *Reservation) finishing() error {
	if r.done || r.s == nil {
		return r.doneErr(false)
	}
	r.done = true
	if e := r.w.failed.Load(); e != nil {
		// After Close (which may have given up on this reservation and
		// released the directory) or a sticky failure, the mapping must not
		// be written: the frame stays reserved and recovery pads it.
		return *e
	}
	// A copy finished already: the claim is gone from the commit word, and
	// the segment may be sealed and unmapped. gone is set before the unmap
	// and read on both sides of the word: false after it, the word was
	// read from this segment's mapping, and while it still holds the claim
	// the sealer cannot unmap the segment.
	s := r.s
	if s.gone.Load() {
		return r.doneErr(true)
	}
	claimed := segment.LoadLength(s.data, r.off) == -int32(segment.FrameHeaderSize+r.n)
	if !claimed || s.gone.Load() {
		return r.doneErr(true)
	}
	return nil
}

// doneErr says why r cannot be finished: byCopy when r itself was not,
// but its frame no longer holds its claim.
func (r *Reservation) doneErr(byCopy bool) error {
	switch {
	case r.s == nil:
		return fmt.Errorf("%w: the zero Reservation (its Reserve failed)", ErrReservationDone)
	case byCopy:
		return fmt.Errorf("%w: the record at %v (a copy of this Reservation was finished?)", ErrReservationDone, r.Position())
	}
	return fmt.Errorf("%w: the record at %v (Commit or Abort was called on it before)", ErrReservationDone, r.Position())
}
