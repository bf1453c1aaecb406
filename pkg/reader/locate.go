package reader

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// minTime is Reader.since when Options.Since is not set: every timestamp
// passes.
const minTime = math.MinInt64

// aliveEvery bounds how often a waiting follower asks whether a writer
// holds the lock (an open, a fcntl and a close). It only matters for
// noticing that a writer died, which needs no hurry.
const aliveEvery = 250 * time.Millisecond

// locate sets where reading begins.
func (r *Reader) locate() error {
	st := r.opts.Start
	switch st.kind {
	case startFirst:
		if r.since > minTime {
			r.locateSince()
		}
	case startAt, startAfter:
		r.seek = &st
		if r.single == "" {
			// A single file is placed by its header's sequence, which
			// its name need not carry (a copy): applySeek decides.
			r.startSeq = st.pos.Seq
		}
	case startSkip:
		r.skip = st.n
	case startLast:
		return r.locateLast(st.n)
	}
	return nil
}

// locateSince starts after the first sealed segments whose records are
// all older than Since (or that hold none), found by footers alone. Not
// after the newest such segment: times are not in position order (a
// record's time is its commit's, and a reservation held while the next
// segment fills leaves the newer record in the older segment), so a
// record at or after Since may sit in a segment before one whose records
// are all older. A segment without a footer (the active one, its
// prepared successor, a damaged one) has no bound on its times: reading
// starts there at the latest. Sealed segments further on whose records
// are all older are passed over by their footers as they come
// (segments.go, bulk_work.go).
func (r *Reader) locateSince() {
	for i, e := range r.list {
		// ReadFooter: an archive's summary, not the whole archive. Not
		// SealedFooter: the question is which records the file holds,
		// not whether it ends a dead writer's tail (countsSealed). A copy
		// of another segment renamed into place is read (after its
		// header is reported), and its footer bounds its records' times
		// as well as the original's; count relies on it likewise.
		f, ferr := segment.ReadFooterContext(r.ctx, e.Path)
		if a, ok := archivedSince(e, ferr); ok {
			f, ferr = segment.ReadFooterContext(r.ctx, a.Path)
		}
		if r.cancelled(ferr) {
			return
		}
		if ferr != nil || (f.Records > 0 && f.MaxTime >= r.since) {
			if i > 0 {
				r.passSealed(r.list[i-1].Seq)
			}
			return
		}
	}
	if n := len(r.list); n > 0 {
		r.passSealed(r.list[n-1].Seq)
	}
}

// passSealed passes the segments up to seq, sealed, by their footers: the
// reader left seq, which held its END frame (restarted looks for it).
func (r *Reader) passSealed(seq uint64) {
	r.lastSeq, r.passed = seq, true
	if h, _, err := r.headerNow(seq); err == nil {
		r.left = mark{seq: seq, created: h.Created, ok: true}
	}
}

// locateLast starts n records before the end: segments are counted from
// the newest back, sealed ones by their footers, others by walking them,
// until n records are found; the first segment needed is then read after
// skipping its surplus records. That segment is counted again by walking
// it: its footer also counts records damaged since, which the reader
// passes over without counting them as skipped, and one intact record too
// many would then be skipped for each (a damaged archive counts the
// records it is read for, those before its loss). Records lost to damage
// still count towards n, as the footers count them.
//
// A live log ends in empty segments (the prepared next one, the one
// created ahead): for n = 0 reading starts after the last record, in the
// segment that holds it, not in the newest file, or the records appended
// after Open to the segments in between would be passed over.
func (r *Reader) locateLast(n uint64) error {
	var total uint64
	// Only a live writer commits records after Open; in a dead writer's
	// log what follows the last record (its leftovers) is still reported.
	if !r.opts.Follow && r.alive {
		r.end = &Position{} // no record yet: none to read
	}
	found := false
	for i := len(r.list) - 1; i >= 0; i-- {
		e := r.list[i]
		k, end, walked := r.count(e)
		if r.err != nil {
			return nil // stopped (cancelled): Next returns false
		}
		if k > 0 && !found && r.end != nil {
			*r.end, found = Position{Seq: e.Seq, Offset: end}, true
		}
		if n == 0 && k == 0 && i > 0 {
			continue
		}
		total += k
		if total >= n {
			want := k - (total - n) // records wanted from e, its last ones
			if !walked {
				k, _ = r.walkCount(e)
			}
			r.startSeq, r.skip = e.Seq, k-min(k, want)
			return nil
		}
	}
	return nil // fewer than n records: read them all
}

// count returns how many records reading segment e would return now, an
// offset past the last of them (and before any committed later), and
// whether it walked the segment to know (or read the footer's count).
func (r *Reader) count(e segment.Entry) (uint64, int64, bool) {
	f, err := segment.ReadFooterContext(r.ctx, e.Path)
	if a, ok := archivedSince(e, err); ok {
		e = a
		f, err = segment.ReadFooterContext(r.ctx, e.Path)
	}
	if err == nil {
		return f.Records, f.EndOffset, false
	}
	if r.cancelled(err) {
		return 0, 0, true
	}
	n, end := r.walkCount(e)
	return n, end, true
}

// archivedSince returns e as its archive when err says e's segment file
// is gone and the archive is there: compress-finished replaced it since
// the listing. A segment counted as absent would move where -n N starts.
func archivedSince(e segment.Entry, err error) (segment.Entry, bool) {
	a, ok := segment.ArchivedInstead(e.Path, err)
	if ok {
		e.Path, e.Archived = a, true
	}
	return e, ok
}

// walkCount counts the records of segment e by walking it, and returns
// the offset after the last one.
func (r *Reader) walkCount(e segment.Entry) (uint64, int64) {
	im, err := r.openImage(e)
	if a, ok := archivedSince(e, err); ok {
		e = a
		im, err = r.openImage(e)
	}
	// A damaged archive is read as far as it decodes (openSeg): its
	// records are counted alike.
	im, _, err = r.openSalvaging(e.Path, im, err)
	if err != nil {
		r.cancelled(err) // counted wrong, but not read: Next returns false
		return 0, 0
	}
	defer im.Close()
	if im.HeaderErr != nil && !im.ReadByName() {
		return 0, 0
	}
	// The footer too is read under the guard: the file may have shrunk
	// since it was mapped. A fault stops the count; the reader reports
	// the segment when it comes to it.
	var n uint64
	var end int64
	_ = im.Guard(func() {
		_, ferr := im.Footer()
		mode := segment.Sealed
		if errors.Is(ferr, segment.ErrNoFooter) && im.Lost() == 0 {
			mode = segment.Quiescent
			if r.alive {
				mode = segment.Live
			}
		}
		im.Walk(segment.HeaderSize, mode, func(ev segment.Event) bool {
			// A record the loss cuts short is torn, never a frame.
			if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
				n, end = n+1, ev.Offset+ev.Len
			}
			return true
		})
	})
	return n, end
}

// nextIndex returns the index in r.list of the next segment to open, or
// len(r.list).
func (r *Reader) nextIndex() int {
	if r.passed {
		return r.entryAfter(r.lastSeq)
	}
	return r.entryAtLeast(r.startSeq)
}

// SameLog reports whether the log is still the one the reader first
// listed: false once its directory was removed or replaced, or the
// reader stopped because its segment numbers began again
// (ErrLogReplaced), which a caller storing a position for a later run
// must know. A reader that moved to a segment 1 made again before it
// returned anything (see ErrLogReplaced) has returned only that log's
// positions: true. Always true when reading one segment file.
func (r *Reader) SameLog() bool {
	return !errors.Is(r.err, ErrLogReplaced) && r.sameDir()
}

// sameDir reports whether the log directory's path still names the
// directory the reader holds open.
func (r *Reader) sameDir() bool {
	if r.single != "" || r.dirF == nil {
		return true
	}
	var held, now unix.Stat_t
	if unix.Fstat(int(r.dirF.Fd()), &held) != nil {
		return true // cannot tell
	}
	if err := unix.Stat(r.dir, &now); err != nil {
		return !errors.Is(err, unix.ENOENT) // gone; other errors cannot tell
	}
	return held.Dev == now.Dev && held.Ino == now.Ino
}

// relist reads the directory again.
func (r *Reader) relist() error {
	if r.single != "" {
		return nil
	}
	if err := r.holdDir(); err != nil {
		return err
	}
	l, err := segment.List(r.dir)
	if err != nil {
		return err
	}
	// Gone is of one listing: a number the new one holds again was made
	// again (segment.Gone).
	r.list, r.listAt, r.older = l.Segments, time.Now(), segment.Gone{}
	return r.restartCheck()
}

// holdDir opens the log directory at the first listing and, at every
// later one, checks that its name still names that directory.
func (r *Reader) holdDir() error {
	if r.dirF == nil {
		d, err := os.OpenFile(r.dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("list log directory: %w", err)
		}
		r.dirF = d
	} else if !r.sameDir() {
		// Sticky, whichever caller met it first (some only look for
		// later segments and would otherwise go on waiting).
		r.stop(fmt.Errorf("%s: %w", r.dir, ErrLogReplaced))
		return r.err
	}
	return nil
}

// restartCheck comes after every listing, and every extension of one
// (refresh), before the caller moves on to a segment in it: one of a log
// begun again must not be read as the next.
func (r *Reader) restartCheck() error {
	if r.stopIfRestarted() {
		return r.err
	}
	return nil
}

// refresh is relist where a follower looks for later segments at every
// rotation and while it waits (the next one to read, a later one sealed
// or holding frames). A listing reads every name in the directory, and
// one at each rotation made tail -f's CPU grow with the number of
// segments kept: 9 ms a rotation at 15,000. Within a second of the last
// listing, the segments after the newest listed are looked up by their
// names instead, in a row up to the first number absent, with relist's
// checks (the directory replaced, the log begun again). What only a
// listing shows (a number missing before later ones, segments removed or
// archived since) waits for the one taken once the second is over: a
// follower leans on a listing up to a second old anyway (waitListing,
// laterExists), and each of those is also found when the reader comes to
// the segment's name (openSeg).
func (r *Reader) refresh() error {
	if !r.opts.Follow || r.single != "" || len(r.list) == 0 || time.Since(r.listAt) >= time.Second {
		return r.relist()
	}
	if err := r.holdDir(); err != nil {
		return err
	}
	for seq := r.list[len(r.list)-1].Seq + 1; seq != 0; seq++ {
		e, ok := segment.Lookup(r.dir, seq)
		if !ok {
			break
		}
		r.list = append(r.list, e)
	}
	return r.restartCheck()
}

// entryAtLeast returns the index of the first listed segment with Seq >=
// seq, or len(r.list).
func (r *Reader) entryAtLeast(seq uint64) int {
	return sort.Search(len(r.list), func(i int) bool { return r.list[i].Seq >= seq })
}

// entryAfter returns the index of the first listed segment with Seq > seq,
// or len(r.list).
func (r *Reader) entryAfter(seq uint64) int {
	return sort.Search(len(r.list), func(i int) bool { return r.list[i].Seq > seq })
}

// laterHasFrames reports whether a listed segment after seq holds a frame
// its writer put there: a writer that did moved past seq. A writer
// creates segment files ahead of need (the next segment, and the files of
// the two after it); they stay empty until it rotates into them, and when
// it closes it removes all but the first again and leaves that one for
// the next writer to continue in. So while every later segment is empty,
// a segment whose tail is zeros may still be written to, and a follower
// must not move past it.
//
// Only a segment of its own counts: a header that names the file's
// sequence and a first frame committed (its CRC seeded with that
// sequence) or claimed. A copy of another segment renamed into place
// (its header names the original's sequence, or its frames' CRCs do) was
// put there by someone else, at any time: a writer may be continuing in
// seq, and after it the copy proves nothing, as stillZero's look does not
// either. Nor does a damaged header (a writer never rewrites one), though
// one of a segment the writer did move on into is not waited behind for
// ever: with no writer, laterHoldsBytes counts its bytes; with one, a
// later sealed segment makes the segment quiet (atTail).
//
// The files are read, not mapped (segment.ReadFirstFrame says why).
func (r *Reader) laterHasFrames(seq uint64) bool {
	return r.laterAny(seq, len(r.list), func(e segment.Entry) (bool, error) {
		h, f, err := segment.ReadFirstFrameContext(r.ctx, e.Path)
		if err != nil || h.Seq != e.Seq {
			return false, err
		}
		return f.State == segment.Committed || f.State == segment.Reserved, nil
	})
}

// laterHoldsBytes reports whether one of the next three segment files
// after seq holds anything in its record area. For a follower whose
// writer is gone: the appender whose claim crossed the end of segment seq
// may have died before storing END while the others had moved on, and
// the next segment's first claim may never have been stored either, with
// committed frames behind it (FORMAT.md section 5: the switch does not
// wait for the crossing appender). Its first commit word is then zero,
// and laterHasFrames alone would keep the follower at seq until a writer
// came back. A copy of another segment (its header names another
// sequence) does not count, as in laterHasFrames: the next writer
// continues in seq if it is gone by then. Any bytes count under a header
// that is damaged or names the file's sequence: they may be the frames
// of a segment the writer moved on into, damaged since. With no writer
// the files do not change, so one found empty is not read again while its
// path names the same file, unchanged (fileID).
func (r *Reader) laterHoldsBytes(seq uint64) bool {
	return r.laterAny(seq, 3, func(e segment.Entry) (bool, error) {
		st, err := os.Lstat(e.Path)
		if err != nil {
			return false, err
		}
		id, known := idOf(st)
		k := fileStamp{e.Path, id}
		if known && r.empty[k] {
			return false, nil
		}
		if h, err := segment.ReadHeaderContext(r.ctx, e.Path); err == nil && h.Seq != e.Seq || r.endedBy(err) {
			return false, err
		}
		yes, err := segment.HasRecordBytesContext(r.ctx, e.Path)
		if err == nil && !yes && known {
			if r.empty == nil || len(r.empty) >= 64 {
				r.empty = map[fileStamp]bool{}
			}
			r.empty[k] = true
		}
		return yes, err
	})
}

// fileStamp identifies a file's content while no writer holds the log:
// its path and its fileID (headers.go).
type fileStamp struct {
	path string
	id   fileID
}

// laterAny reports whether an archive is listed after seq, or one of the
// first max other segment files listed after it satisfies ok. A file ok
// fails on is passed over: removed since the listing, or archived (seen
// next time); one whose lease wait the context ended stops the reader.
func (r *Reader) laterAny(seq uint64, max int, ok func(e segment.Entry) (bool, error)) bool {
	looked := 0
	for _, e := range r.list[r.entryAfter(seq):] {
		if e.Archived {
			return true // only sealed segments are archived
		}
		if looked++; looked > max {
			break
		}
		yes, err := ok(e)
		if r.cancelled(err) {
			return false
		}
		if err == nil && yes {
			return true
		}
	}
	return false
}

// exists reports whether segment seq (or its archive) is in the directory.
func (r *Reader) exists(seq uint64) bool { return segment.Present(r.dir, seq) }

// laterExists reports whether a segment after seq is in the directory,
// listing it again when the next name appeared or the listing is stale.
func (r *Reader) laterExists(seq uint64) bool {
	if r.single != "" {
		return false
	}
	if time.Since(r.listAt) < time.Second && !r.exists(seq+1) {
		return r.entryAfter(seq) < len(r.list)
	}
	if r.refresh() != nil {
		return false
	}
	return r.entryAfter(seq) < len(r.list)
}

// refreshAlive asks whether a writer holds the log's lock now. When the
// lock cannot be queried (LOCK a symbolic link, say), a writer is assumed:
// the reader then waits for frames rather than skipping ones that may
// still be committed.
func (r *Reader) refreshAlive() bool {
	r.writerNow()
	return r.alive
}

// writerNow is refreshAlive returning what LOCK says of the writer too.
func (r *Reader) writerNow() segment.Writer {
	w, err := segment.WriterInfoContext(r.ctx, r.dir)
	r.alive, r.aliveAt = w.Alive || err != nil, time.Now()
	// A wait for a lease's break on LOCK ended by the context stops the
	// reader as a segment's does: nothing is known of the writer, and
	// assuming one must not pass for the log's end.
	r.cancelled(err)
	return w
}

// backoff is the follow poll interval after idle time without a record:
// an eighth of it, within [PollMin, PollMax]. Latency stays within about
// an eighth of the gap between records, and an idle follower polls about
// 1/PollMax times a second.
func (r *Reader) backoff(idle time.Duration) time.Duration {
	return min(max(idle/8, r.opts.PollMin), r.opts.PollMax)
}

// sleep waits d or until ctx is done or stop is closed (Close). The Go
// runtime's timers wake about a millisecond late at best, so short waits
// use nanosleep(2) directly, which blocks only this goroutine's thread
// for that long (a Wait notices a Close from another goroutine after it).
func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < 2*time.Millisecond {
		ts := unix.NsecToTimespec(int64(d))
		_ = unix.Nanosleep(&ts, nil)
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	case <-t.C:
		return nil
	}
}
