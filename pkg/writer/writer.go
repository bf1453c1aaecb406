// Package writer appends records to an auditseg log from any number of
// goroutines at once.
//
// An append is one atomic add on the active segment's tail, which hands the
// caller a frame in the memory-mapped file; the caller copies its record in
// and commits it with a release store of the frame's length
// (segment.StoreLength; on amd64 a plain MOV, no fence). There is no
// mutex and no spin lock on that path, no allocation, and no second shared
// counter. A background goroutine keeps the next segment mapped and
// pre-faulted before it is needed (or, when appenders catch up with the
// pre-fault, lets them in and faults the rest in ahead of them); another
// creates the segment files, reserved on disk in full (fallocate), up to
// two beyond that one (creator.go); another seals each finished segment
// once its last frame is committed, hashing it while it fills. So a
// running writer holds up to three empty segments' worth of disk beyond
// its records.
// The format is specified in docs/FORMAT.md.
//
// A segment file truncated by someone else under the writer (FORMAT.md
// section 12, assumption 8) fails it, naming the file and the offset,
// where a background goroutine, Close, Abort or an END frame meets the
// cut. The stores of Append, Reserve and Commit are not guarded (guard.go:
// the cost), nor the caller's into a Reservation's Bytes: one past the cut
// kills the process with SIGBUS.
//
// OpenContext is Open whose waits (another process's file lease on LOCK
// or a segment, recovery segment by segment) end with its context; the
// context covers opening only, not the writer's life.
package writer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
)

// Position names a record; see segment.Position.
type Position = segment.Position

// Writer appends records to the log in one directory. It is safe for use
// by any number of goroutines.
type Writer struct {
	dir  string
	opts Options
	lock *segment.Lock

	cur       atomic.Pointer[seg]
	maxRecord int
	clock     clock

	// failed holds the sticky error (ErrFailed or ErrClosed wrapped).
	failed atomic.Pointer[error]
	// prepErr is the last failure to prepare the next segment (a full
	// disk); appenders that need a new segment return it until a retry
	// of the preparer succeeds.
	prepErr atomic.Pointer[error]

	// wake is closed and replaced whenever rotation state changes, to wake
	// appenders waiting for the next segment.
	wake atomic.Pointer[chan struct{}]

	rotMu   sync.Mutex // rotation and close only, never the append path
	closing bool

	kickPrep chan struct{}
	kickSeal chan struct{}
	// bgSteps counts the background goroutines' steps (a preparer or
	// sealer pass, a populated 2 MiB): appenders read it at yieldEvery's
	// boundaries, never on the append path, to see whether the background
	// gets CPU time.
	bgSteps atomic.Uint64
	// yieldSeen is bgSteps when an appender last crossed one of
	// yieldEvery's boundaries: written once per 256 KiB, not per append.
	yieldSeen atomic.Uint64
	drops     chan *os.File // sealed segments to write back (SyncNone), then recycle
	clean     chan *os.File // sealed, written-back segments whose memory is reused (recycle.go)
	done      chan struct{} // closed by Close to stop the goroutines
	wg        sync.WaitGroup

	sealer   sealer
	syncer   syncer
	pages    pagePolicy // which page size to map segments in
	lazy     lazySealed // sealed without a flush (SyncNone), for Sync
	closeMu  sync.Mutex
	closed   bool
	closeErr error
	closeEnd chan struct{} // closed when Close has set closeErr
	lockMu   sync.Mutex    // serialises checkLock (preparer, sealer)
	lockNote string        // its last note, under lockMu
	stats    Stats
}

// Stats describe what Open recovered.
type Stats struct {
	// RecoveredSegments were unsealed segments (a writer died) that Open
	// sealed; RecoveredFrames were reserved or zero-gap frames among them
	// turned into PAD; DamagedSegments could not be sealed because a
	// committed frame in them is damaged, or their name is taken by
	// something other than a regular file (segment.Entry.NotRegular;
	// verify reports them).
	RecoveredSegments, RecoveredFrames, DamagedSegments int
	// TornTails were torn last frames of segments Open sealed: committed
	// but torn by a power cut before their Append returned, nothing
	// intact after them (docs/FORMAT.md section 8, step 3.5). Each is
	// under a PAD frame now, its bytes kept; the END frame follows it.
	TornTails int
	// RemovedTemps were leftover temporary files of interrupted creations.
	RemovedTemps int
}

// Open opens the log in dir for appending, creating it if needed (and
// removing what it created, if still empty, when it fails). It takes the
// directory's lock, so a second writer fails at once with an error
// wrapping segment.ErrLocked that names the holder's pid. If the previous
// writer died, Open first recovers: see docs/FORMAT.md, "Recovery".
// Nothing ends its waits early: see OpenContext.
func Open(dir string, opts Options) (*Writer, error) {
	return OpenContext(context.Background(), dir, opts)
}

// OpenContext is Open with ctx for the opening. Once ctx is done, a wait
// for another process's lease (a file server's) on LOCK or on a segment
// file recovery opens to be given up, which lasts up to lease-break-time
// and a second (46 s by default; segment.OpenNoFollowContext), ends, and
// recovery stops before the next segment it would recover (each one is
// flushed to disk, which a slow disk can make take seconds) or the first
// segment's creation. OpenContext then returns an error wrapping ctx's
// (context.Canceled, say) and its cause, holding no lock, no goroutine
// started, and what it created removed as on any failure of Open. A
// recovery it stops may have removed the leftover temporary files and
// sealed some segments, as a crash during recovery would have: the next
// Open goes on from there. A ctx done from the start opens nothing. ctx
// covers the opening only, not the writer's life: its cancellation after
// OpenContext has returned does nothing.
func OpenContext(ctx context.Context, dir string, opts Options) (*Writer, error) {
	// Segment paths are joined to dir, which cleans: made, locked and
	// listed as given, "link/../log" was another directory for them.
	dir = segment.CleanName(dir)
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("open %s: %w", dir, cancel.Err(ctx))
	}
	created, err := mkdirDurable(opts.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("open log directory: %w", err)
	}
	lock, err := segment.AcquireLockContext(ctx, dir)
	if err != nil {
		abandon(nil, created)
		return nil, err
	}
	w := &Writer{
		dir: dir, opts: opts, lock: lock, maxRecord: int(opts.MaxRecordSize),
		kickPrep: make(chan struct{}, 1), kickSeal: make(chan struct{}, 1), done: make(chan struct{}),
		closeEnd: make(chan struct{}),
	}
	ch := make(chan struct{})
	w.wake.Store(&ch)
	w.pages.interval, w.pages.opened = opts.SyncInterval, time.Now()
	first, prev, err := w.recover(ctx)
	if err != nil {
		abandon(lock, created)
		return nil, recoveryError(dir, err)
	}
	// Recovery's stores are made: readers waiting for frames in a segment
	// below first (one recovery left unsealed, damaged) stop waiting.
	if err := lock.Appending(first.seq); err != nil {
		w.opts.Logger.Warn("cannot record the first segment appended to in the lock file; followers of a segment left damaged wait for the next seal", "err", err)
	}
	w.sealer.prev = prev
	w.sealer.queue, w.sealer.last = []*seg{first}, first
	w.sealer.idle = make(chan struct{})
	w.cur.Store(first)
	w.syncer.init(w)
	w.clock.start(w, opts.TimePrecision)
	// The recycler's queues before the goroutines that use them start.
	if !opts.KeepCache {
		w.clean = make(chan *os.File, maxRecycle)
	}
	if opts.Sync == SyncNone && !opts.KeepCache {
		w.drops = make(chan *os.File, maxRecycle)
	}
	w.wg.Add(2)
	go w.prepareLoop()
	go w.sealLoop()
	if opts.Sync == SyncInterval {
		w.wg.Add(1)
		go w.intervalLoop()
	}
	if opts.Sync != SyncNone {
		w.wg.Add(1)
		go w.writeAheadLoop()
	}
	if opts.Sync == SyncNone && !opts.KeepCache {
		w.wg.Add(1)
		go w.dropLoop()
	}
	if opts.SegmentSize < 2*yieldStride {
		kick(w.kickPrep) // it may fill before yieldEvery would ask: see there
	}
	return w, nil
}

// Recovered reports what Open found and repaired.
func (w *Writer) Recovered() Stats { return w.stats }

// Dir returns the log directory.
func (w *Writer) Dir() string { return w.dir }

// Append copies p into the log as one record and commits it. With
// SyncAlways it returns once the record is durable. The returned Position
// orders the record among all others. An error with a non-zero Position
// (SyncAlways: the flush failed, or Close gave up, wrapping ErrNotDurable;
// or ErrMaybeLost) means the record was committed but is not known to be
// durable: it may be in the log.
func (w *Writer) Append(p []byte) (Position, error) {
	if e := w.failed.Load(); e != nil {
		return Position{}, *e
	}
	if len(p) > w.maxRecord {
		return Position{}, w.tooLarge(len(p))
	}
	n := segment.FrameSize(len(p))
	length := int32(segment.FrameHeaderSize + len(p))
	for {
		s := w.cur.Load()
		off := s.tail.Add(n) - n
		if off+n > s.dataLimit {
			if err := w.overflow(s, off); err != nil {
				return Position{}, err
			}
			continue
		}
		img := s.data
		segment.StoreLength(img, off, -length) // claim: the slot reads as reserved
		copy(img[off+segment.FrameHeaderSize:], p)
		ts := w.clock.now()
		segment.PutFrameHeader(img[off:], segment.TypeData, length, ts)
		segment.PutFrameCRC(img[off:], s.seed, off) // reads the payload back from L1
		segment.StoreLength(img, off, length)       // commit
		pos := Position{Seq: s.seq, Offset: off}
		if s.detached.Load() {
			return pos, w.committedAsClosed(pos)
		}
		w.yieldEvery(s, off, n)
		if w.opts.Sync == SyncAlways {
			if err := w.syncCommitted(pos); err != nil {
				return pos, err
			}
		}
		return pos, nil
	}
}

// yieldEvery lets other goroutines run after a committed frame [off,
// off+n) that crosses a 256 KiB boundary of its segment, while the next
// segment is not ready and the background goroutines made no step since
// the last boundary an appender crossed. With more appending goroutines than CPUs,
// the preparer and the sealer would otherwise wait behind them in the Go
// scheduler's run queues for whole time slices (10 ms each) and fall
// behind, and the appenders then wait at every rotation: 64-byte appends
// at 8 goroutines ran at 0.67× of one goroutine's rate, 0.9× with a yield
// (BenchmarkAppend, 4 alternating runs, g1/g2/g4/g8 medians
// 11.3/9.8/8.7/7.6 -> 11.7/10.4/11.0/10.4 Mrec/s). A goroutine never
// yields holding a reservation, which would hold back readers and the
// seal.
//
// A yield costs the appender its CPU until the goroutine it let in blocks
// or is preempted: the kick just before it readies the preparer on this
// very CPU, and Gosched leaves the appender in the global run queue with
// no idle CPU woken for it. With a core to spare that bought nothing: one
// appender paced at a record a microsecond stalled 0.9-1.4 ms at the
// first boundary of every 4 MiB segment (from each record's scheduled
// start, p99.9 1.46 ms). So a boundary yields only if no background step
// was made since the boundary before (in this segment or the last): the
// background is starved, not merely busy on another core. After a
// rotation the preparer, kicked by it, has made one by the first boundary
// unless it is starved; a segment too small to cross more than one
// boundary can still yield at it.
//
// It is also where the preparer learns that the segment after s is needed
// when nothing else told it: after Open, before the first rotation (which
// would otherwise wait for a whole creation, ~230 ms with its fsyncs and
// first-touch faults). Not at Open itself: a writer that appends a few
// records would pay for a 64 MiB segment it never uses. (Segments too
// small to cross a boundary before they fill are prepared at Open.)
func (w *Writer) yieldEvery(s *seg, off, n int64) {
	if (off^(off+n))&^(yieldStride-1) == 0 || s.next.Load() != nil {
		return
	}
	kick(w.kickPrep)
	steps := w.bgSteps.Load()
	if w.yieldSeen.Swap(steps) == steps {
		runtime.Gosched()
	}
}

// yieldStride is yieldEvery's boundary: a power of two.
const yieldStride = 256 << 10

func (w *Writer) tooLarge(n int) error {
	return &TooLargeError{Dir: w.dir, Size: int64(n), Limit: int64(w.maxRecord), SegmentSize: w.opts.SegmentSize}
}

// overflow handles a claim at off that does not fit in s. The one claim
// that crosses the data limit writes the END frame; every overflowing
// caller then waits for (or performs) the switch to the next segment.
func (w *Writer) overflow(s *seg, off int64) error {
	if off <= s.dataLimit {
		if err := w.putEnd(s, off); err != nil {
			return err
		}
		kick(w.kickSeal)
	}
	for {
		ch := *w.wake.Load()
		if w.cur.Load() != s {
			return nil
		}
		switch err := w.rotate(s); {
		case err == nil:
			return nil
		case !errors.Is(err, errNotReady):
			return err
		}
		if e := w.prepErr.Load(); e != nil {
			kick(w.kickPrep) // retry; the disk may have room again
			return *e
		}
		kick(w.kickPrep)
		<-ch
	}
}

var errNotReady = errors.New("next segment not ready")

// rotate makes s.next the active segment if s is still active and full.
// Appenders call it when they overflow and the preparer when it finishes a
// segment that is already needed, so rotation never depends on one
// particular goroutine.
func (w *Writer) rotate(s *seg) error {
	w.rotMu.Lock()
	defer w.rotMu.Unlock()
	if w.cur.Load() != s {
		return nil
	}
	if w.closing {
		return w.closedErr()
	}
	if e := w.failed.Load(); e != nil {
		return *e
	}
	nx := s.next.Load()
	if nx == nil || !s.full() {
		return errNotReady
	}
	w.cur.Store(nx)
	w.pages.rotated(s)
	w.broadcast()
	kick(w.kickPrep)
	kick(w.kickSeal)
	return nil
}

func (w *Writer) closedErr() error { return fmt.Errorf("%s: %w", w.dir, ErrClosed) }

func (w *Writer) broadcast() {
	ch := make(chan struct{})
	old := w.wake.Swap(&ch)
	close(*old)
}

// fail makes err sticky: every later call returns it.
func (w *Writer) fail(err error) {
	e := fmt.Errorf("%w: %w", ErrFailed, err)
	if w.failed.CompareAndSwap(nil, &e) {
		w.opts.Logger.Error("auditseg writer failed; no further records are accepted", "dir", w.dir, "err", err)
		w.broadcast()
	}
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close seals the active segment, stops the background goroutines and
// releases the directory. It waits for open reservations while frames
// keep being committed anywhere in the segments it seals (behind an open
// reservation too), giving up after Options.CloseTimeout without any.
// An active segment nothing was appended to is not sealed: it stays,
// empty, for the next Open to continue in. Under SyncInterval and
// SyncAlways, Close also fsyncs the sealed segments recovery found if no
// Sync has yet (see Sync), whether or not it gave up; if it gave up and
// a flush failed, its error wraps both. Calling Close again returns the
// first call's result.
func (w *Writer) Close() error {
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	if w.closed {
		return w.closeErr
	}
	w.closed = true

	w.rotMu.Lock()
	w.closing = true
	s := w.cur.Load()
	w.rotMu.Unlock()
	// Claim everything left in the active segment, as a crossing writer
	// would: later claims overflow and get ErrClosed. A segment nothing
	// was ever claimed in is left unsealed and empty instead, for the next
	// Open to continue in: sealing it would leave a segment file of no
	// records behind every Open and Close that appended nothing.
	unused := s.tail.CompareAndSwap(segment.HeaderSize, s.dataLimit+1)
	if unused {
		s.unused.Store(true)
	} else if off := s.tail.Add(s.dataLimit + 1); off-(s.dataLimit+1) <= s.dataLimit && w.failed.Load() == nil {
		// A failed writer seals nothing more: the next Open recovers the
		// segment, END included. Its mapping may be what failed (a file
		// truncated under it), where writing END would fault.
		_ = w.putEnd(s, off-(s.dataLimit+1)) // a fault is the sticky failure Close returns
	}
	w.broadcast()

	err := w.sealer.drain(w, w.opts.CloseTimeout)
	close(w.done)
	w.wg.Wait()
	w.drainRecycler()
	if w.opts.Sync != SyncNone && w.failed.Load() == nil {
		// Sealing flushed this writer's own segments; the sealed ones
		// recovery inherited (from a writer under SyncNone, perhaps never
		// written back) wait for the first Sync, which a writer closed
		// before its first tick, or before any SyncAlways append, never
		// made: their records would not be durable as the policy says.
		// Even when Close gave up on a reservation: that is in a segment
		// of this writer's, left unsealed, not in theirs.
		// A failure is sticky (fsyncAll records it): returned below, as
		// Sync's would be, beside ErrReservationsOpen if Close gave up.
		_ = w.lazy.fsyncAll(w.opts.FS, w.opts.Logger, w.fail)
	}
	if nx := s.next.Load(); nx != nil {
		// Prepared but never used: its file stays, empty, and the next
		// Open continues in it; unless the active segment is left empty
		// too, which the next Open continues in instead.
		derr := nx.release()
		if derr == nil && unused {
			derr = w.removeUnused(nx.path)
		}
		if err == nil {
			err = derr
		}
	}
	if e := w.failed.Load(); e != nil {
		// Both, when Close gave up on a reservation (or could not remove
		// the segment it prepared) and a flush failed: the caller must
		// learn that records are not durable. Not twice when err is that
		// failure's own cause.
		switch {
		case err == nil:
			err = *e
		case !errors.Is(*e, err):
			err = errors.Join(err, *e)
		}
	}
	// Poison the writer before the directory is released: a reservation
	// Close gave up on must not write into a segment another writer may
	// now be recovering.
	closedErr := w.closedErr()
	w.failed.CompareAndSwap(nil, &closedErr)
	// What is still queued was not sealed: Close gave up on a reservation,
	// or sealing failed. Late writes through a Reservation's Bytes must
	// not reach those files either.
	for _, s := range w.sealer.snapshot() {
		if derr := s.detach(); err == nil {
			err = derr
		}
	}
	if lerr := w.lock.Release(); err == nil {
		err = lerr
	}
	w.closeErr = err
	close(w.closeEnd)
	return err
}

// now is used where a fresh wall-clock reading matters more than speed.
func now() int64 { return time.Now().UnixNano() }
