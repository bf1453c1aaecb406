package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// result is one segment checked on its own, before the log-level pass
// decides what its unsealed state means (open tail, live writer, gap, chain).
type result struct {
	rep SegmentReport
	// order is the sequence number from the file name (the header's if
	// the name has none): the log's order, whatever the header claims.
	order uint64

	found collector // findings that do not depend on the segment's place in the log
	// unfinished holds reserved frames and zero gaps. Whether they are
	// damage, crash residue or a live writer at work depends on the place.
	unfinished collector

	footer       segment.Footer
	sealed       bool // the footer decodes
	footerAbsent bool // the footer's magic is zeros: never sealed, or its seal did not finish
	sealCut      bool // footerAbsent, with the rest of the footer stored (segment.ErrSealUnfinished)
	leftAsIs     bool // footerAbsent, and recovery left it so (checker.leftAsIs)
	hasEnd       bool
	endAt        int64 // the END frame's offset when hasEnd
	dataEnd      int64 // where the zero tail starts, -1 if the walk saw none
	empty        bool  // the record area holds no frame at all
	walked       bool
	named        bool // order comes from the file name
	vanished     bool // removed between listing and opening (retention)
	ioErr        error

	// rehash: not sealed, but every byte the digest covers is intact (a
	// valid header, frames from it up to END): its digest, if its footer
	// was lost, can be computed again (chain.go).
	rehash bool
	// spare, if not nil, is a footer checked by its CRC that the chain
	// takes for that of a segment not sealed, and spareAt its offset:
	// the copy the summary of an archive whose content is damaged holds,
	// or the footer at the end of a file whose header claims another
	// size (segment.Image.FileFooter).
	spare   *segment.Footer
	spareAt int64
	// refusedHeader: a segment file whose header recovery refuses (bad,
	// or disagreeing with the file's name or size); chain.go.
	refusedHeader bool
	// refusal says why recovery leaves the segment unsealed if it is
	// not sealed (FORMAT.md section 8, steps 3.1, 3.2, 3.4: its header,
	// a torn frame, a damaged END claim), "" if it would seal it: what
	// decides whether a dead writer's unsealed segment is crash residue.
	refusal string
	// tornTail: the segment's torn finding is a torn tail recovery
	// finishes (checker.tornTail), as the residue it is in a dead
	// writer's crash tail; nil if there is none.
	tornTail *Finding
	// renamed: an archive whose footer's sequence number is not its
	// name's. Recovery takes no digest from it, and chains the next
	// segment from zeros when it is the newest sealed (FORMAT.md section
	// 8, step 2); chain.go.
	renamed bool
}

// collector keeps findings up to a limit and counts them all.
type collector struct {
	max     int
	list    []Finding
	count   map[Class]int
	omitted int
}

func (c *collector) add(f Finding) {
	if c.count == nil {
		c.count = make(map[Class]int)
	}
	c.count[f.Class]++
	if c.count[f.Class] <= c.max { // the first max of each class
		c.list = append(c.list, f)
	} else {
		c.omitted++
	}
}

func (c *collector) total() int {
	n := 0
	for _, v := range c.count {
		n += v
	}
	return n
}

// checker carries one segment's check.
type checker struct {
	o   *Options
	r   *result
	seq uint64
	img []byte
	// win, if not nil, is the window sealed bytes are read through.
	win *window
	// zeros, if not nil, is a window the zeros after the last frame of a
	// segment not sealed are read through (zeroTail).
	zeros *window
	// valid is how many bytes of img the file holds; past it img is
	// padding that must not be read (segment.WalkValid).
	valid int64
	// created is the header's creation time; known is false when the
	// header is unusable and the frames are checked with the file name's
	// sequence number instead.
	created int64
	known   bool
	// damage: bytes inside the digested range are known bad, which
	// explains a digest or record-count mismatch without another finding.
	damage bool
	// endTorn: a torn region the walk found covers the footer's END
	// offset ("END is torn", not "no END"). A flag, not a list of the
	// regions: a hostile segment can hold millions of them.
	endTorn bool
	// judge is recovery's judgment of the segment, fed the walk's events
	// (refuseAt). refused: damage for which recovery leaves a segment
	// unsealed (refuse); resumed: a frame intact after the last of it.
	// For leftAsIs.
	judge            segment.Refusal
	refused, resumed bool

	// t tallies the records; its time bounds are timeBounds'.
	t segment.RecordTally
}

// refuse notes damage for which recovery leaves the segment unsealed
// (segment.Refusal), the first reason kept for the report.
func (c *checker) refuse(why *segment.CorruptError) {
	c.refused, c.resumed = true, false
	if c.r.refusal == "" {
		c.r.refusal = why.Reason
	}
}

// refuseAt judges ev, an event of the walk, as recovery does, and
// returns why recovery refuses the segment for it, or nil.
func (c *checker) refuseAt(ev *segment.Event) *segment.CorruptError {
	why := c.judge.Event(ev)
	if why != nil {
		c.refuse(why)
	}
	return why
}

// checkPath opens and checks one segment file or archive. With buf, a
// sealed segment file is read into it whole if it fits, else through it
// (window.go).
func checkPath(path string, o *Options, buf []byte) *result {
	r := checkFile(path, o, buf)
	if r.rep.Archived && !r.sealed && !r.vanished && r.ioErr == nil {
		// The content's footer is lost or damaged. The summary's copy of
		// it, if its CRC checks, is what recovery chains to when the
		// archive is the newest sealed segment, and what the next segment
		// was chained to when it was sealed: the chain goes on from it.
		// A read that o.ctx ends leaves no spare; the run, stopped,
		// returns no report (PathsContext).
		if h, ft, err := segment.ReadSummaryContext(o.ctx, r.rep.Path); err == nil && h.Seq == r.order {
			r.spare, r.spareAt = &ft, h.Size-segment.FooterSize
		}
	}
	return r
}

// unreadable is the result of the file at path that cannot be read, for
// err.
func unreadable(path string, o *Options, err error) *result {
	r := newResult(path, o)
	r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, err.Error(), err
	return r
}

// checkFile is checkPath without its look at a damaged archive's summary.
func checkFile(path string, o *Options, buf []byte) *result {
	r := newResult(path, o)
	im, src, e, err := openImage(path, o, buf)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if alt, ok := segment.ArchivedInstead(path, err); ok {
				return checkFile(alt, o, nil)
			}
			r.vanished = true
		case errors.Is(err, segment.ErrCorrupt):
			// A damaged archive, or a file too large to be a segment:
			// nothing in it can be attributed.
			r.rep.State = StateDamaged
			f := findingFromErr(Torn, path, r.rep.Seq, err)
			f.Reason = "cannot open: " + strings.TrimPrefix(f.Reason, path+": ")
			if st, serr := os.Lstat(path); serr == nil {
				r.rep.FileBytes, f.Bytes = st.Size(), st.Size()
			}
			var ad *segment.ArchiveDamage
			if errors.As(err, &ad) {
				// Nothing of the segment decodes from Lost on; the blocks
				// before decode, and what they hold is not counted as lost.
				f.Offset, f.Bytes = ad.Lost, ad.Size-ad.Lost
			}
			r.found.add(f)
			if ad != nil {
				checkSalvaged(path, r, o)
				if !r.named {
					// f was made before the salvage placed the
					// segment by its header: a name without a
					// number gave it 0.
					for i := range r.found.list {
						r.found.list[i].Seq = r.rep.Seq
					}
				}
			}
		default:
			r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, err.Error(), err
		}
		return r
	}
	if e != nil {
		checkEnds(e, r, o)
		return r
	}
	defer im.Close()
	var w *window
	if src != nil {
		w = &window{buf: buf, src: src, file: src, im: im}
		defer w.close()
	}
	checkGuarded(im, r, o, w)
	return r
}

// checkGuarded is checkImage turning a memory fault into an I/O error of
// the segment: a mapped file that shrinks while it is read (an operator's
// truncate, a damaged file system) raises SIGBUS on the missing pages,
// which would kill the process. The report says the file changed while it
// was read (segment.Image.Guard), or the window's read error, and the exit
// code is 2, as for any file that cannot be read.
func checkGuarded(im *segment.Image, r *result, o *Options, w *window) {
	err := im.Guard(func() { checkImage(im, r, o, w) })
	if w != nil && w.err != nil {
		// A read error says why the mapping faulted, if it did; if it did
		// not, the file still could not be read.
		err = fmt.Errorf("%s: %w", im.Path, w.err)
	}
	if err == nil {
		// Cut inside its last page, the file read as zeros from the cut
		// on through the mapping, without a fault: what that found (a
		// footer cut to zeros, a digest) is not the file's, and the file
		// is reported as changed instead, as compress-finished does.
		if err = im.Shrunk(); err != nil {
			r.found, r.unfinished = collector{max: r.found.max}, collector{max: r.unfinished.max}
		}
	}
	if err != nil {
		r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, err.Error(), err
	}
}

func newResult(path string, o *Options) *result {
	r := &result{endAt: -1, dataEnd: -1}
	r.rep.Path, r.rep.EndOffset = path, -1
	r.found.max, r.unfinished.max = o.MaxFindings, o.MaxFindings
	if seq, archived, ok := segment.ParseName(filepath.Base(path)); ok {
		r.rep.Seq, r.rep.Archived, r.order, r.named = seq, archived, seq, true
	}
	return r
}

// checkImage checks one segment image. w, if not nil, is the window a
// sealed segment's bytes are read through on a full check (window.go);
// everything else is read through im.Data but the zeros after the last
// frame of a segment not sealed (zeroTail). The window reads a segment's
// frames only once the footer says it is sealed: a sealed segment never
// changes, so what the window reads is what the mapping holds.
func checkImage(im *segment.Image, r *result, o *Options, w *window) {
	r.rep.Archived = r.rep.Archived || im.Archived
	r.rep.FileBytes, r.rep.Bytes = im.FileSize, int64(len(im.Data))
	if im.Archived {
		r.rep.FileBytes = im.ArchiveSize // the .seg.zst file's, as the report says
	}
	c := newChecker(o, r, im.RecoveryRefusal())
	c.img, c.valid = im.Data, im.Valid()
	hdr := im.Header
	if im.HeaderErr != nil {
		if !c.headerByName(im) {
			r.rep.State = StateDamaged
			return
		}
		hdr = im.Header
	} else {
		c.validHeader(im.Path, hdr, im.FileSize)
	}
	c.numbered(hdr.Seq)

	w.giveBack() // the header's block, before the footer's is mapped
	var ferr error
	r.footer, ferr = im.Footer()
	switch {
	case ferr == nil:
		r.seal(r.footer)
	case errors.Is(ferr, segment.ErrNoFooter):
		r.footerAbsent = true
		r.sealCut = errors.Is(ferr, segment.ErrSealUnfinished)
	default:
		c.addFound(findingFromErr(Footer, im.Path, hdr.Seq, ferr), false)
	}
	if !r.sealed && im.HeaderErr == nil && im.FileSize != hdr.Size {
		// The header's size is wrong, and the file's own end may hold
		// the footer the next segment was chained to (chain.go).
		if ft, err := im.FileFooter(); err == nil {
			r.spare, r.spareAt = &ft, im.FileSize-segment.FooterSize
		}
	}
	if err := im.CheckSummary(); errors.Is(err, segment.ErrCorrupt) {
		c.addFound(findingFromErr(Footer, im.Path, hdr.Seq, err), false)
	} else if errors.Is(err, fs.ErrNotExist) {
		// Removed since it was read (retention), as when it is gone
		// before it is opened: not part of the log any more.
		r.vanished = true
		return
	} else if err != nil {
		// The summary could not be read (too many open files, an I/O
		// error): that is not damage, and the archive's content is.
		r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, err.Error(), err
		return
	}
	if im.HeaderErr != nil {
		r.rep.State = StateDamaged
	} else if !r.sealed && !r.footerAbsent {
		r.rep.State = StateDamaged
	}

	w.giveBack() // the footer's block, before the pass
	type digested struct {
		d   [segment.DigestSize]byte
		err error
	}
	walk := !o.Quick || !r.sealed
	if w != nil && walk {
		w.valid = im.Valid()
		c.zeros = w
	} else {
		w = nil
	}
	if w != nil && r.sealed && !o.Quick {
		w.digest = segment.NewDigestStream(r.footer.PrevDigest)
		w.digestEnd = r.footer.EndOffset + segment.FrameHeaderSize
		c.win = w
	}
	var digest chan digested
	// With a window, the digest is hashed on the way, on this goroutine,
	// unless a core would idle: fewer segments than jobs, and a segment
	// large enough (window.go, digestAhead).
	ahead := c.win != nil && o.spareCore && len(im.Data) >= 2*windowSize
	if r.sealed && !o.Quick && (c.win == nil || ahead) && len(im.Data) >= parallelDigest {
		// BLAKE3 and the frame CRCs cost about the same: hash on another
		// core while walking, so one large segment takes half the time.
		// That goroutine needs its own fault guard (a mapped file may
		// shrink): checkGuarded's covers only this one. And it must be
		// done before the image is unmapped, even when a fault here ends
		// the walk early: hence the Wait, deferred.
		digest = make(chan digested, 1)
		var wg sync.WaitGroup
		defer wg.Wait()
		var src io.ReaderAt
		if ahead {
			src = w.src
			w.digest = nil
		}
		wg.Go(func() {
			var d digested
			var rerr error
			d.err = im.Guard(func() { d.d, rerr = digestAhead(src, im.Data, r.footer) })
			if rerr != nil {
				d.err = fmt.Errorf("%s: %w", im.Path, rerr) // the cause of a fault after it
			}
			digest <- d
		})
	}
	if walk {
		c.walk()
	}
	r.leftAsIs = r.footerAbsent && c.leftAsIs()
	r.refusedHeader = !r.rep.Archived && im.Check() != nil
	r.renamed = r.rep.Archived && r.sealed && r.named && r.footer.Seq != r.order
	r.rehash = !r.sealed && !r.rep.Archived && r.walked && r.hasEnd && !c.refused && !c.damage && c.valid == int64(len(c.img))
	if r.sealed {
		var d digested
		if digest != nil {
			d = <-digest
		} else if c.win != nil {
			d.d = c.win.sum(im.Data, r.footer.EndOffset)
		} else if !o.Quick {
			d.d = segment.Digest(r.footer.PrevDigest, im.Data, r.footer.EndOffset)
		}
		if d.err != nil {
			r.rep.State, r.rep.Error, r.ioErr = StateUnreadable, d.err.Error(), d.err
			return
		}
		if o.Quick {
			f := segment.DecodeFrame(c.img, c.seq, r.footer.EndOffset)
			c.quickEnd(f.State == segment.Committed && f.Type == segment.TypeEnd)
		}
		c.checkSealed(d.d)
	}
}

// checkEnds is checkImage of a sealed segment file for --quick from what
// openImage read of it (ends), no image: the same checks of its header
// and footer, the same findings.
func checkEnds(e *ends, r *result, o *Options) {
	r.rep.Archived = r.rep.Archived || e.archived
	r.rep.FileBytes, r.rep.Bytes = e.fileSize, e.size
	c := newChecker(o, r, segment.RecoveryRefusal(r.rep.Path, e.h, nil, e.size, nil, 0))
	c.validHeader(r.rep.Path, e.h, e.size)
	c.numbered(e.h.Seq)
	r.footer = e.ft
	r.seal(e.ft)
	// As checkImage: an archive's header is never refused (recovery takes
	// an archive for sealed), and one under another number's name is a
	// renamed copy.
	r.refusedHeader = !r.rep.Archived && segment.CheckHeader(r.rep.Path, e.h, e.size) != nil
	r.renamed = r.rep.Archived && r.named && r.footer.Seq != r.order
	c.quickEnd(e.hasEnd)
	c.checkSealed([segment.DigestSize]byte{})
}

// newChecker starts the check of r with judge, recovery's judgment of
// the segment's header (RecoveryRefusal), which may refuse it already.
func newChecker(o *Options, r *result, judge segment.Refusal) *checker {
	c := &checker{o: o, r: r, t: segment.NewRecordTally(), judge: judge}
	if why := c.judge.Refused(); why != nil {
		c.refuse(why) // its header
	}
	return c
}

// validHeader checks h, the valid header of the segment file at path,
// against the file, of fileSize bytes: its size and its name's number.
func (c *checker) validHeader(path string, h segment.Header, fileSize int64) {
	c.known, c.created = true, h.Created
	if err := segment.CheckHeader(path, h, fileSize); err != nil {
		f := findingFromErr(Torn, path, c.r.rep.Seq, err)
		if fileSize != h.Size {
			f.Bytes = max(fileSize, h.Size) - min(fileSize, h.Size)
		}
		c.addFound(f, true)
	}
}

// headerByName reports im's unusable header, and makes im readable by
// the sequence number of its file name (Image.ReadByName): the frames
// carry the sequence in their CRCs, so with the name's every intact frame
// can still be checked. false: the name or the size is not a segment's,
// and no frame can be.
func (c *checker) headerByName(im *segment.Image) bool {
	f := findingFromErr(Torn, im.Path, c.r.rep.Seq, im.HeaderErr)
	f.Reason = "segment header: " + f.Reason
	c.addFound(f, true)
	return im.ReadByName()
}

// numbered sets the number the frames are checked with: the header's
// (their CRC seeds came from it). The segment and its findings are placed
// by the file name's, as readers place its records (FORMAT.md, section
// 3); they differ only in a copy renamed to another number, which
// validHeader reports.
func (c *checker) numbered(seq uint64) {
	c.seq = seq
	if !c.r.named {
		c.r.rep.Seq, c.r.order = seq, seq
	}
}

// seal records that the segment is sealed by ft, its footer.
func (r *result) seal(ft segment.Footer) {
	r.sealed = true
	r.rep.State = StateSealed
	if ft.Flags&segment.FlagRecovered != 0 {
		r.rep.State = StateRecovered
	}
	r.rep.Digest = hex.EncodeToString(ft.Digest[:])
	r.rep.PrevDigest = hex.EncodeToString(ft.PrevDigest[:])
}

// quickEnd is what --quick takes in place of the walk of a sealed
// segment: the footer's record count, and whether its END offset holds
// the END frame (hasEnd).
func (c *checker) quickEnd(hasEnd bool) {
	r := c.r
	r.rep.Records = r.footer.Records
	if hasEnd {
		r.hasEnd, r.endAt = true, r.footer.EndOffset
		r.rep.EndOffset = r.footer.EndOffset
	}
}

// checkSealed compares the footer with the contents; d is the digest
// computed from them (unused in quick mode).
func (c *checker) checkSealed(d [segment.DigestSize]byte) {
	r, ft := c.r, c.r.footer
	at := r.rep.Bytes - segment.FooterSize
	switch {
	case r.hasEnd && r.endAt != ft.EndOffset:
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("footer end offset %d, but the END frame is at %d", ft.EndOffset, r.endAt)), false)
	case !r.hasEnd && r.dataEnd >= segment.HeaderSize && r.dataEnd < ft.EndOffset:
		// The frames stop early: the bytes up to END were committed (the
		// footer vouches for them) and are now zero.
		n := ft.EndOffset + segment.FrameHeaderSize - r.dataEnd
		c.addFound(c.finding(Torn, r.dataEnd, n, segment.LostEnd(r.dataEnd, ft.EndOffset)), true)
	case !r.hasEnd && !c.endTorn:
		c.addFound(c.finding(MissingEnd, ft.EndOffset, 0, segment.LostEnd(ft.EndOffset, ft.EndOffset)), true)
	}
	if ft.Flags&^segment.FlagRecovered != 0 {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("unknown footer flags 0x%x", ft.Flags&^segment.FlagRecovered)), false)
	}
	// c.created-tol saturates, as in timeBounds: near the bottom of int64
	// (a damaged or forged creation time) it must not wrap around.
	if tol := int64(c.o.TimeTolerance); tol >= 0 && c.known && c.created >= math.MinInt64+tol && ft.SealedAt < c.created-tol {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("sealed at %s, %v before the segment was created (%s)",
			fmtTime(ft.SealedAt), time.Duration(c.created-ft.SealedAt), fmtTime(c.created))), false)
	}
	if c.o.Quick {
		return
	}
	r.rep.DigestChecked = true
	r.rep.DigestOK = d == ft.Digest
	if c.damage {
		// The damage found above already explains any mismatch; a second
		// finding for the same bytes would only be noise.
		return
	}
	if c.t.Records != ft.Records {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("footer counts %d records, the segment holds %d", ft.Records, c.t.Records)), false)
	}
	if c.t.Records == 0 && (ft.MinTime != 0 || ft.MaxTime != 0) {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("footer time range [%s, %s], but the segment holds no records",
			fmtTime(ft.MinTime), fmtTime(ft.MaxTime))), false)
	}
	if c.t.Records > 0 && (c.t.MinTime != ft.MinTime || c.t.MaxTime != ft.MaxTime) {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("footer time range [%s, %s], the records span [%s, %s]",
			fmtTime(ft.MinTime), fmtTime(ft.MaxTime), fmtTime(c.t.MinTime), fmtTime(c.t.MaxTime))), false)
	}
	if !r.rep.DigestOK {
		c.addFound(c.finding(Footer, at, 0, fmt.Sprintf("digest does not match the contents (stored %x, computed %x)",
			ft.Digest[:8], d[:8])), false)
	}
}

// addFound records a finding; damage says it covers bytes in the digested
// range.
func (c *checker) addFound(f Finding, damage bool) {
	c.r.found.add(f)
	c.damage = c.damage || damage
}

func (c *checker) finding(class Class, off, n int64, reason string) Finding {
	return Finding{Class: class, Path: c.r.rep.Path, Seq: c.r.rep.Seq, Offset: off, Bytes: n, Reason: reason}
}

// findingFromErr turns a decoding error into a finding at its offset.
func findingFromErr(class Class, path string, seq uint64, err error) Finding {
	f := Finding{Class: class, Path: path, Seq: seq, Reason: err.Error()}
	var ce *segment.CorruptError
	if errors.As(err, &ce) {
		f.Offset, f.Reason = ce.Offset, ce.Reason
	}
	return f
}

func fmtTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}
