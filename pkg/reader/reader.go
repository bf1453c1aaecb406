// Package reader reads the records of an auditseg log in position order,
// across all its segments: from the start, from a position or a time, the
// last N, and following a live log as a writer appends to it.
//
// Segments are read through segment.OpenImage (a read-only mapping of a
// .seg file, or the decompressed bytes of a .seg.zst archive) and decoded
// with segment.Walk; this package never parses bytes itself. A reader
// holds at most two images, the segment it reads and the next one, opened
// ahead on another goroutine while a replay reads sealed segments; each is
// closed as soon as the reader moves past it, so reading thousands of
// segments holds no more mappings than that and no file descriptor. With
// Options.Bulk, the sealed segments whose ranges are in flight are open
// too: two or three at a time.
//
// # Following
//
// A writer in another process commits a record by storing its length word
// through a shared mapping, which raises no file-system event, so a
// follower polls: it re-reads the commit word at its offset with a backoff
// that starts at Options.PollMin after each record and grows to
// Options.PollMax while nothing arrives (about 10 cheap polls a second when
// idle). Unwritten and reserved frames mean "not yet" while a writer holds
// the log's lock; an END frame means "continue in the next segment", which
// the writer normally created before it was needed. A segment that is
// sealed or archived while it is read changes nothing: the reader keeps
// the mapping it has (a removed file's mapping stays valid) and continues
// from its offset, so no record is lost or repeated. A segment in which
// it has found nothing yet may be removed and made again at its name
// within one log (a file a writer made ahead, removed unused when it
// closed and made again by the next writer): the reader looks at the
// name at each poll, and reads the file now there instead.
//
// When no writer holds the lock, frames that stay reserved and zero runs
// followed by frames are skipped and reported as Damage. The reader checks
// the lock before and after deciding so, so a writer that starts meanwhile
// is never mistaken for a dead one. A segment that ends in zeros is passed
// only once a later segment holds frames (or, with no writer, any bytes;
// without Follow, once one is listed; a copy of another segment renamed
// into place does not count), and only if it still ends in zeros
// when looked at after that: a writer that started meanwhile may have
// continued in it, and its records there are read, by a replay too.
//
// # Segments removed or archived while the log is read
//
// Old segments may be removed (a retention job) or replaced by their
// archives (compress-finished) at any time. A segment the reader has opened
// is read whole whatever happens to its file. One whose file is not found
// (ENOENT) when the reader comes to it is looked up in a fresh listing: its
// archive, if there, is read instead; if later segments are listed and it
// is not, it was removed, and so was every number after it up to the first
// segment listed now, whether the reader's listing held them or not (the
// writer made them since, or the listing was read while retention deleted:
// a directory read is not a snapshot). Retention removes the oldest
// segments first, so a hole that reaches down to a removed segment is
// removal, not damage: if the segment below it (the one passed last, or the
// number below when none was) is gone too, and so is every older segment
// listed, the run is reported as one DamageRemoved (through OnDamage, and
// under Strict it stops the reader, since its records were not read) and
// the reader goes on with the first segment there. If an older segment is
// still there, the run was taken from the middle of the log, a hole between
// two segments that are there: DamageMissing, listed or not, as verify
// reports it (a gap). If nothing is listed from its number on, it is
// neither: a writer made it ahead of need and removed it unused when it
// closed, and the reader waits for the next writer to make it again. Any
// other error opening a segment is DamageSegment. The same rule holds for
// numbers the reader comes to that no listing of it held: a hole the reader
// finds after the last segment it passed is damage (DamageMissing) while
// that segment, or an older one, is still there; if they are all gone
// (read, then removed with the numbers after them), the hole is
// DamageRemoved. (verify, which judges from one listing, also calls a gap a
// number that was already missing when it listed the directory.) A start
// position (At, After) in a segment that is not there, while an older one
// is, starts in such a hole: DamageMissing, up to the first segment
// there. A segment removed before the reader listed the directory, below
// the first one listed, is simply not there. Skip counts the records of the segments it
// comes to, so one removed before then is not counted.
//
// # Damage
//
// Damage is reported through Options.OnDamage and skipped: a torn frame
// (CRC mismatch or impossible header) up to the next frame whose CRC
// matches; zeros where a sealed segment's footer says frames or its END
// frame are, to the end of its record area; zeros or a claim never
// committed inside a sealed segment (a footer is written only once every
// frame is committed), up to the next frame whose CRC matches; a segment
// header that is unusable (its frames are still read, under the sequence
// number of the file name), or, whole, a segment file too short to be
// read so. Options.Strict stops
// at the first report instead. The reader never panics on any file content
// and never allocates by a length read from a file. A mapped file that
// shrinks while the reader decodes it is reported too (the fault is
// caught): the records decoded before the fault are returned (their bytes
// were there and their CRCs passed), and a DamageSegment reports the
// segment from the first record not returned, its Err naming the offset
// that had no data; the reader goes on with the next segment. A Payload
// shows the mapping as it is when it is read, not as it was checked: a
// cut inside a page reads as zeros to the end of that page, without a
// fault, and a cut below a page faults. Record.AppendPayload and Clone
// copy it under the fault guard and check the copy against the frame's
// CRC, so that the bytes they return are those the reader checked (or
// an error naming the file and the record); reading Payload directly is
// not protected.
//
// # Closing
//
// Close stops a reader: Next returns false, and Err and Wait return
// ErrClosed, so a loop on Next tells a Close from the end of the log.
// Call it from the goroutine that reads. To stop a follower from another
// goroutine, cancel the context given to its Wait: Wait returns the
// context's error at once, and the reading goroutine then calls Close.
// A Close from another goroutine that lands while the reader's goroutine
// is blocked in Wait is safe (it wakes the Wait, which returns ErrClosed
// and releases the segments, and returns once they are released, unless
// a callback or a bulk run was running: see Close), but Wait returns by
// itself as soon as a record arrives, and one that lands while the
// goroutine is in Next or still reading a Record's Payload unmaps memory
// under it: nothing outside the reader can tell the two moments apart, so
// it is a safety net for an idle follower, not a way to stop one. A
// segment whose open waits for another process's lease to be given up (up
// to 46 s) is waited for in Next too: the context given to OpenContext
// ends that wait, and stops the reader.
//
// # Costs
//
// Polls shorter than 2ms sleep in nanosleep(2), blocking the calling
// goroutine's thread, because the Go runtime's timers wake about a
// millisecond late; a Close from another goroutine wakes such a poll only
// when it ends (so it may wait that long). When the lock file cannot be
// queried (no permission to open it), a writer is assumed, so unfinished
// frames are waited for rather than skipped.
package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Options configure a Reader. The zero value reads every record once and
// stops at the end of what is committed: in a log a writer holds, at the
// first frame not committed yet (a reservation still open), as records are
// returned in position order; those committed after it are not read.
type Options struct {
	// Start is where reading begins; the zero value is First().
	Start Start
	// Since, if not zero, keeps only records whose timestamp is at or after
	// it, whatever order the timestamps are in (a record's time is its
	// commit's, so a record committed late may follow newer ones).
	// Sealed segments whose newest record is older are skipped by their
	// footer without being decoded. It cannot be combined with Last or
	// Skip. Timestamps come from each writer's clock: records stamped
	// before a clock step back are dropped like older ones.
	Since time.Time
	// Follow keeps the reader waiting for records after the last one
	// committed (see Wait) instead of ending there.
	Follow bool
	// OnDamage, if set, is called (from Next or Wait) with everything the
	// reader skips. The reader itself never prints. It may call Close,
	// which stops the reader there (see Close).
	OnDamage func(Damage)
	// OnDuplicate, if set, is called from Open once for each segment
	// whose original and archive are both in the directory (an
	// interrupted or running compress-finished, or --keep-original): the
	// original is read and the archive ignored, which its owner may want
	// to know, as a copy the reader never checks takes up space.
	OnDuplicate func(original, archive string)
	// Strict stops the reader at the first damage: Next returns false and
	// Err returns the *Damage.
	Strict bool
	// Bulk, if set, has the records of sealed segments formatted on
	// several goroutines and handed to Bulk.Write instead of returned by
	// Next: see Bulk.
	Bulk *Bulk
	// PollMin and PollMax bound the follow backoff; defaults 50µs and
	// 100ms. Right after a record the reader polls every PollMin; the
	// interval then grows with the time since that record (an eighth of
	// it), up to PollMax.
	PollMin, PollMax time.Duration
}

// Start says where a Reader begins. Build one with First, At, After, Last
// or Skip.
type Start struct {
	kind startKind
	pos  Position
	n    uint64
}

type startKind uint8

const (
	startFirst startKind = iota
	startAt
	startAfter
	startLast
	startSkip
)

// First starts at the first record of the log.
func First() Start { return Start{kind: startFirst} }

// At starts at the first record at or after position p.
func At(p Position) Start { return Start{kind: startAt, pos: p} }

// After starts at the first record strictly after position p: resuming
// after the last record a previous run handled (a cursor).
func After(p Position) Start { return Start{kind: startAfter, pos: p} }

// Last starts n records before the end of what is committed, so that the
// last n records are read. Sealed segments are counted by their footers,
// not decoded, so where a sealed segment after the start is damaged (a
// torn frame, an archive that decodes only in part) its lost records
// still count: fewer than n are read, and the damage is reported as
// usual. Without Follow, in a log a writer holds, the read ends with the
// last record committed when Open located the start, so that n records
// are read however many are committed meanwhile (Last(0) reads none);
// with Follow, Last(0) reads only records committed after Open.
func Last(n uint64) Start { return Start{kind: startLast, n: n} }

// Skip starts after the first n records (Skip(0) is First). Sealed
// segments are skipped whole by their footers' record counts.
func Skip(n uint64) Start { return Start{kind: startSkip, n: n} }

// ErrClosed is returned by Wait, and by Err, once Close was called.
var ErrClosed = errors.New("reader is closed")

// ErrLogReplaced: the log directory was removed, or replaced by another (a
// log begun again), or the log was begun again inside it (its files deleted
// and a writer starting at segment 1 again), while it was read. A reader,
// following or replaying, stops rather than read on by sequence number into
// another log's segments, or wait for a number the new log reaches only
// after its first segments, which it would skip. SameLog is false after it:
// a position of the old log must not be stored for the new one. The reader
// tells a log begun in place from retention and compress-finished by the
// segment it is at, or left last, in which it found a frame: that segment
// made again (another creation time in its header), or gone under both its
// names with a lower number made since (created after it, or a segment 1
// other than the one its first listing found) and the oldest segment it
// found beside it gone. One that has found no frame yet goes by the segment
// it is in (segment 1 made again, or a lower number made after it) or a
// segment 1 other than the one its first listing found; but one that has
// found nothing in segment 1 reads a segment 1 made again with its start
// instead (a start there named no record of the file it held, which had
// none; a start past the segment's start in a file that held records, not
// walked yet, still stops it), which loses and repeats nothing whether a
// failed writer Open or a new log made it, and its positions are then that
// file's log's (SameLog stays true). It looks at every listing, and again
// at each segment it opens, before it returns any of it: a reader that lags
// opens the next segments by the names it listed, which may be a new log's
// by then.
var ErrLogReplaced = errors.New("log directory removed or replaced, or the log begun again in it, while it was read")

// Reader iterates over the records of a log. It belongs to one
// goroutine; Close may also be called from Options.OnDamage and
// Bulk.Write. To stop it from another goroutine, cancel Wait's context
// (see Closing in the package documentation).
type Reader struct {
	dir    string
	single string // the file, when reading one segment file
	opts   Options
	since  int64

	list   []segment.Entry // the last directory listing
	listAt time.Time
	older  segment.Gone // which of list olderPresent found gone
	// dirF is dir, held open from the first listing: its inode cannot be
	// reused while it is open, so a directory made again at the path has
	// another (SameLog compares them).
	dirF *os.File
	// The next segment to open is the first listed after lastSeq once a
	// segment was passed (passed), else the first at or after startSeq.
	startSeq, lastSeq uint64
	passed            bool
	seek              *Start // At/After, applied to the first segment opened
	skip              uint64 // records still to skip before the first one returned
	// end, with Last and without Follow in a live writer's log, is where
	// the records committed when Open located the start ended (see
	// locateLast): the read stops there, as records committed since are
	// not among the last n.
	end *Position
	// left is the segment the reader left last in which it found a frame
	// (at, restarted); one and oneCreated are segment 1 as its first
	// listing of a segment found it.
	left       mark
	one        firstOne
	oneCreated int64
	// oldest is the oldest segment as that listing found it, and then as
	// the last look that found the reader's segment there did: while it
	// is still that file, no log was begun again.
	oldest mark
	unread retry // the oldest listed, if noteOldest could not read its header

	cur *seg
	pre *prefetch // the next segment, being opened
	evs []segment.Event
	ei  int

	alive   bool // last known writer state
	aliveAt time.Time
	// empty: later segment files found to hold nothing at all while no
	// writer held the log (laterHoldsBytes), by path, size and mtime.
	empty map[fileStamp]bool
	// headers: segment headers read by the restart look (readHeader).
	headers map[string]headerSeen

	rec      Record
	have     bool // rec was found by Wait and not yet returned by Next
	err      error
	done     bool // nothing more, ever
	released bool // Close's work is done (release; under cl.mu, as Close reads it)
	damaged  int
	// closeLater: a Close was called while code of the caller's ran (a
	// callback, see closer), which left the segments to the Next or Wait
	// that called it, as the decoder still holds them: that one releases
	// them as it returns.
	closeLater bool
	cl         closer
	// ctx ends the waits for a lease's break in opening segments
	// (OpenContext); it is read by the goroutines that open ahead too.
	ctx context.Context
}

// batch is how many walk events the reader decodes at once.
const batch = 128

// Open opens the log in dir, or the single segment file dir names, for
// reading from opts.Start. Listing the directory and, for Last and Since,
// the footers that locate the start happen here; the records are decoded
// by Next.
func Open(dir string, opts Options) (*Reader, error) {
	return OpenContext(context.Background(), dir, opts)
}

// OpenContext is Open with ctx, for the reader's life, ending the waits
// for a lease another process holds on a segment file or LOCK (a file
// server's) to be given up, which last up to lease-break-time and a
// second (46 s by default; segment.OpenImageContext): once ctx is done,
// an open that waits for one stops the reader, Err returning an error
// that wraps ctx's. Wait's own context ends its waits for records.
func OpenContext(ctx context.Context, dir string, opts Options) (*Reader, error) {
	dir = segment.CleanName(dir) // the directory the writer appends to
	if opts.PollMin <= 0 {
		opts.PollMin = 50 * time.Microsecond
	}
	if opts.PollMax <= 0 {
		opts.PollMax = 100 * time.Millisecond
	}
	opts.PollMax = max(opts.PollMax, opts.PollMin)
	if err := checkBulk(opts.Bulk); err != nil {
		return nil, err
	}
	r := &Reader{dir: dir, opts: opts, since: minTime, evs: make([]segment.Event, 0, batch), cl: closer{stop: make(chan struct{})}, ctx: ctx}
	if !opts.Since.IsZero() {
		if k := opts.Start.kind; k == startLast || k == startSkip {
			return nil, errors.New("reader: Since cannot be combined with Last or Skip")
		}
		r.since = sinceNanos(opts.Since)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		// A FIFO or a device: listing it as a directory said "open
		// PATH: not a directory", as if it were a mistyped one.
		return nil, segment.NotRegularFile(dir, st.Mode())
	}
	if st.Mode().IsRegular() {
		r.single, r.dir = dir, filepath.Dir(dir)
		seq, _, _ := segment.ParseName(filepath.Base(dir))
		r.list = []segment.Entry{{Seq: seq, Path: dir, Archived: segment.IsArchiveName(filepath.Base(dir))}}
	} else if err := r.relist(); err != nil && !r.endedBy(err) {
		// Not when the context ended the restart look's header read (a
		// lease wait): that stopped the reader, and Err says so, as when
		// it ends the reads that place a Since or Last start.
		r.Close()
		return nil, err
	} else if opts.OnDuplicate != nil {
		for _, e := range r.list {
			if e.Duplicate != "" {
				opts.OnDuplicate(e.Path, e.Duplicate)
			}
		}
	}
	r.refreshAlive()
	if err := r.locate(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Next advances to the next record and reports whether there is one. It
// never blocks: false means the end of the log (or, without Follow, a
// frame a live writer has not committed yet), or in follow mode that
// nothing more is committed yet (call Wait), or an error (see Err).
func (r *Reader) Next() bool {
	if r.have {
		r.have = false
		return true
	}
	if r.err != nil || r.done {
		return false
	}
	ok := r.fill()
	if r.closeLater {
		r.Close() // the one called from a callback: release now
		return false
	}
	return ok
}

// Record returns the record Next moved to. Its Payload is valid until the
// next call to Next, Wait or Close. Once the reader has released the
// record's segment (Close, or Next moved past it) it returns the zero
// Record.
func (r *Reader) Record() Record { return r.rec }

// Err returns the error that stopped the reader, if any: an I/O error,
// a *Damage under Options.Strict, or ErrClosed after Close (unless one of
// the others stopped it first).
func (r *Reader) Err() error { return r.err }

// stop records err as why the reader stopped, unless something stopped it
// already: Err reports the first reason, which callers act on (tail exits
// 0 after a signal's cancellation, 1 after damage), not whatever failed
// on the way out.
func (r *Reader) stop(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Damaged returns how many damage reports the reader has made so far.
func (r *Reader) Damaged() int { return r.damaged }

// Wait blocks until Next has a record to return. It returns nil then,
// ctx.Err() when ctx is done, io.EOF when no record can ever come (not
// following, or the END of a single segment file), ErrClosed once Close
// was called (from another goroutine too: that wakes it), and Err
// otherwise. Callers that buffer output should flush it before calling
// Wait.
func (r *Reader) Wait(ctx context.Context) (err error) {
	r.startWait()
	defer func() {
		if r.endWait() {
			err = ErrClosed
		}
	}()
	return r.wait(ctx)
}

// wait is Wait's loop, run marked as waiting: a Close meanwhile only
// closes r.cl.stop, which wakes its sleep, and leaves the segments to
// endWait.
func (r *Reader) wait(ctx context.Context) error {
	switch {
	case r.closing():
		return ErrClosed
	case r.have:
		return nil
	case r.err != nil:
		return r.err
	case r.done || !r.opts.Follow:
		return io.EOF
	}
	idleSince, checked := time.Now(), time.Now()
	for {
		ok := r.fill()
		if r.closing() {
			return ErrClosed
		}
		if ok {
			r.have = true
			return nil
		}
		switch {
		case r.err != nil:
			return r.err
		case r.done:
			return io.EOF
		}
		// Waiting in a segment may never list the directory again (a
		// live writer's tail): look at the directory itself now and then.
		if time.Since(checked) >= time.Second {
			checked = time.Now()
			if !r.SameLog() {
				r.stop(fmt.Errorf("%s: %w", r.dir, ErrLogReplaced))
				return r.err
			}
		}
		if err := sleep(ctx, r.cl.stop, r.backoff(time.Since(idleSince))); err != nil {
			return err
		}
	}
}

// All returns the records as a sequence, following (per Options.Follow)
// until ctx is done. The error, if any (ErrClosed after Close), is yielded
// last with a zero Record; ctx ending is not an error. Payloads are valid
// only within the loop body's iteration.
func (r *Reader) All(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			for r.Next() {
				if !yield(r.Record(), nil) {
					return
				}
			}
			if r.err != nil {
				yield(Record{}, r.err)
				return
			}
			err := r.Wait(ctx)
			if err == nil {
				continue
			}
			if err != io.EOF && ctx.Err() == nil {
				yield(Record{}, err)
			}
			return
		}
	}
}

func (r *Reader) closeCur() error {
	c := r.cur
	r.left = r.at() // c's, if it held a frame
	r.cur, r.evs, r.ei = nil, r.evs[:0], 0
	if c == nil {
		return nil
	}
	r.keepHeader(c.mark, c.img)
	c.released.Store(true) // before the unmap: a Record's copy checks it
	if r.rec.seg == c {
		// Record hands it out no more: its Payload is about to be
		// unmapped, and a read of it would crash the program.
		r.rec = Record{}
	}
	return c.img.Close()
}

// sinceNanos is t in Unix nanoseconds, saturated: UnixNano is undefined
// outside about 1678-2262 (it wraps), and a Since of year 1000 would then
// keep nothing and one of year 3000 everything.
func sinceNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
