package reader

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A log emptied in place (every file deleted, the directory kept) and
// begun again by a writer starts at segment 1 again: SameLog cannot see
// it, and a follower at segment N would wait for a segment after N and
// take the new log's for it, skipping the new log's first N segments.
// restarted looks for that at every listing a follower takes.

// mark is a segment as its header names it.
type mark struct {
	seq     uint64
	created int64 // the header's creation time
	ok      bool
}

// markOf is segment seq's mark from im, if im's header is that segment's
// (a copy of another segment renamed into place is not).
func markOf(seq uint64, im *segment.Image) mark {
	if im == nil || im.HeaderErr != nil || im.Header.Seq != seq {
		return mark{}
	}
	return mark{seq: seq, created: im.Header.Created, ok: true}
}

// firstOne is what the reader's first listing of a segment found of
// segment 1.
type firstOne uint8

const (
	oneUnlooked firstOne = iota
	oneAbsent            // removed already: the oldest listed's creation time is in Reader.oneCreated
	onePresent           // its creation time is in Reader.oneCreated
	oneUnknown           // its header could not be read
)

// at returns the segment the reader is in, or left last, in which it
// found a frame. Only such a segment: a writer removes files it made
// ahead only while they never held a frame, and makes again a file it
// could not map before publishing it (writer's removeUnused,
// dropUnmappable), so an empty file may go or be made again within one
// log; one that held a frame is removed only by retention (oldest first)
// or replaced by its archive, whose header is the same.
func (r *Reader) at() mark {
	if c := r.cur; c != nil && c.off > segment.HeaderSize && c.mark.ok {
		return c.mark
	}
	return r.left
}

// headerNow reads segment seq's header as the directory holds it now,
// from its .seg file, else from its archive. gone is true when neither
// name exists. compress-finished renames the archive into place before it
// unlinks the original, so a segment it replaces is never found under
// neither name when the original is looked for first; a directory read
// racing it may miss both names (a listing-time hole), which is why the
// names are looked up, not the listing.
func (r *Reader) headerNow(seq uint64) (h segment.Header, gone bool, err error) {
	p := filepath.Join(r.dir, segment.FileName(seq))
	h, err = r.readHeader(p)
	if a, ok := segment.ArchivedInstead(p, err); ok {
		h, err = r.readHeader(a)
	}
	if err == nil && h.Seq != seq {
		err = fmt.Errorf("%s: header says segment %d", p, h.Seq)
	}
	return h, errors.Is(err, fs.ErrNotExist), err
}

// restarted returns an error wrapping ErrLogReplaced when the segment
// numbers of the log went back below the segment the reader is at (at):
//
//   - that segment's number is there with another creation time: a
//     writer made that number again. Within one log a file that held a
//     frame is never made again (see at), and its archive keeps its
//     header;
//   - or it is gone under both names, and the oldest segment listed below
//     it is there now and was made after it: created later, or a segment
//     1 other than the one the reader's first listing found (another
//     creation time, or, where it found none, one created since the
//     oldest segment it found: not the log's own put back); unless the
//     oldest segment noted at a look that found the reader's segment
//     there (noteOldest) is still there. Within one
//     log no number below a segment that held a frame is made after it
//     (a writer numbers on from the newest present; the files it makes
//     ahead again are above), so one that was is a log begun again from
//     1; retention, removing the oldest first, leaves nothing below a
//     segment it removed.
//
// Each fact is read from the file system after the listing, not from the
// listing alone, and none is a passing state: a removal racing the look
// finds a file gone and yields no verdict (looked at again next listing),
// never a wrong one. A creation time compared across two writers' clocks
// can miss a restart (the new writer's clock behind), never invent one,
// and a segment 1 made again where the first listing had one does not
// depend on clocks. A false verdict needs the oldest segment noted
// removed since the last look, and segments deleted out of order (not
// oldest first, so that one below the reader's stays) together with a
// clock stepped back between their creations, or with a segment 1 that
// the writer could not map, and so made again, after the reader's first
// listing.
func (r *Reader) restarted() error {
	r.noteOne()
	a := r.at()
	if !a.ok {
		return r.restartedUnread()
	}
	h, gone, err := r.headerNow(a.seq)
	if !gone {
		if err != nil || h.Created == a.created {
			r.noteOldest(a, err)
			return nil
		}
		return fmt.Errorf("%s: segment numbers went back below %d, where the reader was: segment %d was made again (created %s; the one read was created %s): %w",
			r.dir, a.seq, a.seq, stamp(h.Created), stamp(a.created), ErrLogReplaced)
	}
	k, hk, ok := r.oldestMadeAfter(a)
	if !ok {
		return nil
	}
	return fmt.Errorf("%s: segment numbers went back below %d, where the reader was: it is gone (neither %s nor %s is there) and segment %d was made since (created %s; segment %d was created %s): %w",
		r.dir, a.seq, segment.FileName(a.seq), segment.ArchiveName(a.seq), k, stamp(hk.Created), a.seq, stamp(a.created), ErrLogReplaced)
}

// oldestMadeAfter reports whether the oldest segment listed, k, is below
// segment m and was made after it: created later, or a segment 1 other
// than the one the reader's first listing found. Not while the oldest
// segment noted with m's file there (r.oldest) is still there: a log
// begun again deletes every file first, and a writer numbers on from the
// newest present.
func (r *Reader) oldestMadeAfter(m mark) (k uint64, hk segment.Header, ok bool) {
	if len(r.list) == 0 || r.list[0].Seq >= m.seq {
		return 0, segment.Header{}, false
	}
	k = r.list[0].Seq
	hk, _, err := r.headerNow(k)
	if err != nil || r.oldestThere(k, hk) {
		// No log was begun again, whatever the clock said when m was
		// made (stepped back since k was).
		return k, hk, false
	}
	return k, hk, hk.Created > m.created || k == 1 && r.oneMadeAgain(hk.Created)
}

// oldestThere reports whether r.oldest is still the file noted, given
// the header hk of segment k, the oldest listed now.
func (r *Reader) oldestThere(k uint64, hk segment.Header) bool {
	f := r.oldest
	if !f.ok {
		return false
	}
	if f.seq != k {
		h, _, err := r.headerNow(f.seq)
		if err != nil {
			return false
		}
		hk = h
	}
	return hk.Created == f.created
}

// noteOldest notes the oldest segment listed in r.oldest, when the look
// found m, the segment the reader is at, still the file it read (err, the
// error reading that file's header, nil): a file there together with the
// reader's tells, for as long as it stays, that no log was begun again,
// though retention removed the older one the first listing found. Only if m
// is still there after the oldest's header is read: a log emptied and begun
// again since the look read m's (its writer makes the segments after 1
// ahead at once) would have a new log's file noted, which would keep the
// look from seeing it for as long as that file stays. A header read and a
// stat of m's name (its header from the mapping or the cache) only when the
// oldest listed changed, or its header could not be read: then what was
// noted before stays (it vouches while it is there) and the header is read
// again at a later look (unread).
func (r *Reader) noteOldest(m mark, err error) {
	if err != nil || len(r.list) == 0 || r.list[0].Seq == r.oldest.seq {
		return
	}
	k := r.list[0].Seq
	if u := &r.unread; u.seq == k && u.left > 0 {
		u.left--
		return
	}
	h, _, err := r.headerNow(k)
	if err != nil {
		r.unread.failed(k)
		return
	}
	r.unread = retry{}
	if hm, _, merr := r.headerNow(m.seq); merr != nil || hm.Created != m.created {
		return // looked at again at the next listing, which finds m gone or made again
	}
	r.oldest = mark{seq: k, created: h.Created, ok: true}
}

// retryMax bounds the looks noteOldest lets pass before it reads again a
// header it could not read (retry): an idle follower looks once or twice a
// poll, so one that stays unreadable (damaged for good) costs an open per
// 64 looks, not one per look, and one that failed once (an I/O error, too
// many open files, the file being replaced) is read again within seconds.
const retryMax = 64

// retry is a segment whose header could not be read, and how many looks
// pass before it is read again: 1, then twice as many after each failure,
// up to retryMax.
type retry struct {
	seq        uint64
	wait, left int
}

func (u *retry) failed(seq uint64) {
	if u.seq != seq {
		*u = retry{seq: seq}
	}
	u.wait = min(max(2*u.wait, 1), retryMax)
	u.left = u.wait
}

// stopIfRestarted is restarted, sticky in r.err: it reports whether the
// reader stopped. Looked at at every listing, and again when the reader
// has opened a segment of its listing and before it returns any of it: a
// reader that lags moves on by the names it listed, maybe long before,
// and those may be a new log's files by then. A replay as much as a
// follower: it lists the directory again at the end of its listing and
// would read a new log's segments past its number as the next ones.
// Opened first, looked at after: a new log makes its numbers in order,
// so a file of it opened means the new log's segment the reader is at,
// or left last, was there before, and is seen now.
func (r *Reader) stopIfRestarted() bool {
	switch {
	case errors.Is(r.err, ErrLogReplaced):
		return true // a listing found it already
	case r.single != "":
		return false
	}
	err := r.restarted()
	if r.endedBy(r.err) {
		// A header read the context ended (readHeader): no verdict, and
		// the reader stopped: what it opened is not read.
		return true
	}
	if err != nil {
		r.stop(err)
		return true
	}
	return false
}

// noteOne records, at the first listing that holds a segment, what it
// found of segment 1 (List looks for the number before the oldest it
// read, so a listing-time hole does not make it absent). A listed oldest
// segment removed since (retention going on) tells nothing: the next
// listing is looked at instead, as taking it for unknown would count any
// segment 1 put back later as a new log's.
func (r *Reader) noteOne() {
	if r.one != oneUnlooked || len(r.list) == 0 {
		return
	}
	oldest := r.list[0].Seq
	h, gone, err := r.headerNow(oldest)
	if err == nil {
		r.oldest = mark{seq: oldest, created: h.Created, ok: true}
	}
	switch {
	case gone:
		return // looked at again at the next listing
	case oldest == 1 && err == nil:
		r.one, r.oneCreated = onePresent, h.Created
	case oldest == 1:
		r.one = oneUnknown
	case err == nil:
		r.one, r.oneCreated = oneAbsent, h.Created
	default:
		r.one, r.oneCreated = oneAbsent, math.MinInt64 // unknown: any segment 1 is another's
	}
}

// oneMadeAgain reports whether a segment 1 created at created is not the
// one the reader's first listing found. Where that listing had none, one
// created before the oldest segment it had is the log's own, put back (a
// backup restored): a new log's is created after, unless its writer's
// clock is behind by more than that segment's age.
func (r *Reader) oneMadeAgain(created int64) bool {
	switch r.one {
	case oneAbsent:
		return created >= r.oneCreated
	case onePresent:
		return created != r.oneCreated
	}
	return false
}

// restartedUnread is restarted for a reader that has found no frame yet:
// started on an empty log, or at the empty segment after a log's last
// (Last(0), a Skip of every record). It has no segment of its own, but
// the one it is in, or waits for, tells:
//
//   - it is in segment 1, sealed or archived (so it held a frame, though
//     the reader has not walked it yet), and a segment 1 with another
//     creation time is there now: within one log such a file is never
//     made again. One that has found nothing in it (startsAnew) is
//     not stopped: an empty segment 1 is made again within one log when
//     the Open that made it failed (it could not be mapped, or its name
//     made durable) and a later one made it anew, and the reader reads
//     the new file with its start, which loses and repeats nothing
//     whether a failed Open or a new log made it; unless that start is
//     past the segment's start and the file it holds held records, not
//     walked yet (then the start was that log's);
//   - it is in segment S above 1, and the oldest segment listed, below S,
//     was made after S (created later, or a segment 1 other than the one
//     the reader's first listing found), and the oldest segment noted at a
//     look that found S there is not there now: that one was there with S,
//     so only a clock stepped back between their creations makes one below
//     S look created later, and S is removed or made again by an ordinary
//     Close and Open (oldestMadeAfter). A writer removes or makes again an
//     empty segment (see at), but it numbers on from the newest present and
//     removes the files after one before it makes that one again, so within
//     one log nothing below S is made after it, empty or not;
//   - it waits, in no segment, for a number above 1 and a segment 1 other
//     than the one its first listing found is there: it passed segment 1
//     (by its END or its footer: it held a frame, and is never made again
//     within one log) or started past it.
//
// A new log whose segment 1 is gone already (its own retention) is not
// seen, as for a reader that found a frame.
func (r *Reader) restartedUnread() error {
	next, from := max(r.startSeq, 1), "waited for"
	if r.passed {
		next = r.lastSeq + 1
	}
	if c := r.cur; c != nil {
		next, from = c.seq, "was"
		if s := c.mark; s.ok {
			h, gone, err := r.headerNow(s.seq)
			switch {
			case !gone && (err != nil || h.Created == s.created):
				r.noteOldest(s, err)
				return nil
			case s.seq == 1 && !gone && r.startsAnew(c):
				return nil // remade moves it to the new file
			case s.seq == 1 && !gone:
				return fmt.Errorf("%s: segment numbers went back to 1, where the reader was before it found a record: segment 1 was made again (created %s; the one read was created %s): %w",
					r.dir, stamp(h.Created), stamp(s.created), ErrLogReplaced)
			case s.seq == 1:
				return nil
			}
			k, hk, ok := r.oldestMadeAfter(s)
			if !ok {
				return nil
			}
			return fmt.Errorf("%s: segment numbers went back below %d, where the reader was before it found a record: segment %d was made since (created %s; segment %d was created %s): %w",
				r.dir, s.seq, k, stamp(hk.Created), s.seq, stamp(s.created), ErrLogReplaced)
		}
	}
	if next <= 1 || len(r.list) == 0 || r.list[0].Seq != 1 {
		return nil
	}
	h, _, err := r.headerNow(1)
	if err != nil || !r.oneMadeAgain(h.Created) {
		return nil
	}
	return fmt.Errorf("%s: segment numbers went back below %d, which the reader %s before it found a record: segment 1 was made since (created %s), not the one its first listing found: %w",
		r.dir, next, from, stamp(h.Created), ErrLogReplaced)
}

// startsAnew reports whether the reader, in c, would read a file made
// again at c's name with its start as given, and has returned nothing: c
// is segment 1 (no segment is below it that it could have read, or that
// a new log could hold) and it has found nothing in c. A start past the
// segment's start (an At or After offset in it, records to Skip) also
// needs the file c maps to hold nothing (heldNothing): then it named no
// record of that file, and holds for the file made again as for a reader
// opened after it was made. Found nothing is also not walked yet (opened,
// before its first refill): a start in a file that held records is that
// log's, and applied to a new log's segment 1 it would skip its first
// records.
func (r *Reader) startsAnew(c *seg) bool {
	if c.seq != 1 || !blank(c) {
		return false
	}
	return c.min <= segment.HeaderSize && r.skip == 0 || heldNothing(c)
}

// heldNothing reports whether c's mapping holds only zeros after its
// header: no frame, claim or damage. A walk over the record area, once
// per look that finds segment 1 made again under a reader that found
// nothing in it; a fault (the file cut) is not nothing.
func heldNothing(c *seg) bool {
	empty := false
	err := c.img.Guard(func() {
		c.img.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			empty = ev.Kind == segment.EvTail && ev.Offset == segment.HeaderSize
			return false
		})
	})
	return err == nil && empty
}

// startedAt makes m, the segment 1 the reader moved to from one in which
// it had found nothing (remade), what its first listing found: it reads
// the log of that file with its start, whichever log it is, and a segment
// 1 other than m is another log's from now on.
func (r *Reader) startedAt(m mark) {
	r.oldest, r.one, r.oneCreated = m, oneUnknown, 0
	if m.ok {
		r.one, r.oneCreated = onePresent, m.created
	}
}

// markNow is segment seq's mark: n's, or, when openSeg passed the file
// without a segment to read (skipped whole by its footer's count or by
// Since, or unreadable), the header at its name now.
func (r *Reader) markNow(seq uint64, n *seg) mark {
	if n != nil {
		return n.mark
	}
	h, _, err := r.headerNow(seq)
	if err != nil {
		return mark{}
	}
	return mark{seq: seq, created: h.Created, ok: true}
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
