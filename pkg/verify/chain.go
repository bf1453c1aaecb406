package verify

import (
	"context"
	"fmt"

	"github.com/auditseg/auditseg/pkg/segment"
)

// The digest chain across a log (FORMAT.md section 6). A sealed segment
// stores the digest of the segment sealed before it: the previous one,
// or, past segments that recovery left unsealed because they are damaged
// (section 8, step 3), the last one sealed before those; zeros when none
// was. In pkg/writer only a seal moves the digest on (sealer.prev, and
// recover's prev, which a segment left as it is does not change).

// chain follows the chain through a log's segments in order.
type chain struct {
	// want is the digest of segment from (0: the start of the log, whose
	// digest is zeros). known: every segment after from up to last is
	// present and left unsealed by recovery, or sealed with its footer
	// lost since (lost), so the next sealed segment must store want moved
	// on by lost.
	want  [segment.DigestSize]byte
	from  uint64
	last  uint64
	known bool
	// lost holds, oldest first, the segments after from whose footer is
	// lost, every byte their digest covers intact (result.rehash): each
	// was sealed (a later segment is) chained to the one sealed before
	// it, so their digests are computed again, from want, once a sealed
	// segment follows (and only then: the newest unsealed segments are
	// open, and never hashed). fromLost: from's digest was so computed.
	lost     []*result
	fromLost bool
	// past: from is a sealed segment file whose header recovery refuses
	// (bad, or disagreeing with the file's name or size: FORMAT.md section
	// 8, step 3.1), and past is the digest it had to chain to, if known
	// (pastOK). Recovery, finding it the newest segment, passed over it
	// and chained the next segment to past; a segment sealed before its
	// header went wrong chained to its digest. The next sealed segment
	// may store either. Recovery passes over a run of such segments
	// whole: past is then the digest before the run, and run holds the
	// digests of the run's segments before from, which a segment sealed
	// while only some of their headers were wrong chained to. A set, as a
	// crafted log may hold any number of them in a row.
	past   [segment.DigestSize]byte
	pastOK bool
	run    map[[segment.DigestSize]byte]bool
}

// newChain starts at the start of the log: the first segment sealed in
// it chains from zeros, segment 1 or one after segments recovery left
// unsealed. A log whose oldest segments are gone starts with whatever its
// first stores.
func newChain() chain { return chain{known: true} }

// link checks r's previous digest if the digest it must hold is known,
// and moves the chain past r. ctx ends a wait for a lease's break on a
// segment rehashed.
func (c *chain) link(ctx context.Context, r *result) (Finding, bool) {
	next := r.order == c.last+1
	c.last = r.order
	ft, sealed, at := r.chainFooter()
	if !sealed {
		if c.known && next && r.ioErr == nil && r.rehash && !c.pastOK {
			c.lost = append(c.lost, r)
			return Finding{}, false
		}
		c.known = c.known && next && r.ioErr == nil && r.leftAsIs
		return Finding{}, false
	}
	check := c.known && next
	if check && len(c.lost) > 0 {
		for _, l := range c.lost {
			d, err := rehash(ctx, l, c.want)
			if err != nil {
				check = false // changed or gone since it was checked: nothing to go on
				break
			}
			c.want, c.from, c.fromLost = d, l.order, true
		}
	}
	want, from, fromLost, past, pastOK, run := c.want, c.from, c.fromLost, c.past, c.pastOK, c.run
	linked := ft.PrevDigest == want || pastOK && (ft.PrevDigest == past || run[ft.PrevDigest])
	before := len(run) // run is added to below
	c.want, c.from, c.known, c.lost, c.fromLost = ft.Digest, r.order, true, nil, false
	c.past, c.pastOK, c.run = want, false, nil
	if r.refusedHeader {
		// Where its own link is not checked, the digest before it is not
		// known (a gap, or the first segment present: the older ones,
		// which recovery may have chained past it to, deleted since).
		c.known, c.pastOK = check, check
		if pastOK {
			if run == nil {
				run = map[[segment.DigestSize]byte]bool{}
			}
			run[want] = true
			c.past, c.run = past, run
		}
	}
	if r.renamed {
		// Recovery's link past it is from zeros, whatever came before.
		c.known, c.past, c.pastOK, c.run = true, [segment.DigestSize]byte{}, true, nil
	}
	if !check {
		return Finding{}, false
	}
	r.rep.ChainChecked = true
	if linked {
		return Finding{}, false
	}
	f := Finding{Class: Chain, Path: r.rep.Path, Seq: r.rep.Seq, Offset: at}
	got := ft.PrevDigest[:8]
	of := fmt.Sprintf("segment %d (%x…)", from, want[:8])
	if fromLost {
		of = fmt.Sprintf("segment %d (%x…, computed from its frames: its footer is lost)", from, want[:8])
	}
	if pastOK {
		of = fmt.Sprintf("segment %d (%x…), nor the one recovery chains to past its header (%x…)", from, want[:8], past[:8])
		if before > 0 {
			of = fmt.Sprintf("segment %d (%x…), nor that of the %d before it whose headers recovery refuses too, nor the one recovery chains to past them (%x…)", from, want[:8], before, past[:8])
		}
	}
	switch {
	case from == 0 && r.order == 1:
		f.Reason = fmt.Sprintf("previous-digest %x… is not zero, but segment 1 is the first of its log", got)
	case from == 0:
		f.Reason = fmt.Sprintf("previous-digest %x… is not zero, but no segment before it was sealed (%s)", got, leftRun(1, r.order-1))
	case from+1 == r.order:
		f.Reason = fmt.Sprintf("previous-digest %x… is not the digest of %s", got, of)
	default:
		f.Reason = fmt.Sprintf("previous-digest %x… is not the digest of %s, the last sealed before it (%s)",
			got, of, leftRun(from+1, r.order-1))
	}
	return f, true
}

// lostDigest is the digest of r, the segment link has just passed with
// its footer lost (the last of c.lost), computed again from its frames
// as the next sealed segment's link will; ok is false when link did not
// take r for such a segment, or one of them cannot be read again.
func (c *chain) lostDigest(ctx context.Context, r *result) (d [segment.DigestSize]byte, ok bool) {
	if len(c.lost) == 0 || c.lost[len(c.lost)-1] != r {
		return d, false
	}
	d = c.want
	for _, l := range c.lost {
		var err error
		if d, err = rehash(ctx, l, d); err != nil {
			return d, false
		}
	}
	return d, true
}

// chainFooter is the footer r links the chain with, whether r has one,
// and its file offset: its own, or, where that is lost, the spare one
// checked by its CRC (an archive whose content lost its footer: its
// summary's copy; a file whose header claims another size: its own
// end's).
func (r *result) chainFooter() (segment.Footer, bool, int64) {
	if !r.sealed && r.spare != nil && r.ioErr == nil {
		return *r.spare, true, r.spareAt
	}
	return r.footer, r.sealed, r.rep.Bytes - segment.FooterSize
}

// rehash computes again the digest of r's segment, whose footer is lost
// (result.rehash), chained from prev. An error when the file changed
// since it was checked (its END is no longer where it was) or cannot be
// read.
func rehash(ctx context.Context, r *result, prev [segment.DigestSize]byte) ([segment.DigestSize]byte, error) {
	var d [segment.DigestSize]byte
	im, err := segment.OpenImageContext(ctx, r.rep.Path)
	if err != nil {
		return d, err
	}
	defer im.Close()
	if im.HeaderErr != nil {
		return d, im.HeaderErr
	}
	var changed error
	err = im.Guard(func() {
		f := segment.DecodeFrame(im.Data, im.Header.Seq, r.endAt)
		if f.State != segment.Committed || f.Type != segment.TypeEnd || im.Valid() != int64(len(im.Data)) {
			changed = fmt.Errorf("%s changed since it was checked", r.rep.Path)
			return
		}
		// A block at a time, released behind: hashed whole, the segment
		// stayed resident until the hash was done.
		ds := segment.NewDigestStream(prev)
		for upto := int64(segment.ReleaseBlock); upto < r.endAt; upto += segment.ReleaseBlock {
			ds.Add(im.Data, upto)
			im.Release(upto-segment.ReleaseBlock, upto)
		}
		d = ds.Sum(im.Data, r.endAt)
	})
	if err == nil {
		err = changed
	}
	return d, err
}

func leftRun(first, last uint64) string {
	if first == last {
		return fmt.Sprintf("segment %d, left unsealed by recovery, is not part of the chain", first)
	}
	return fmt.Sprintf("segments %d to %d, left unsealed by recovery, are not part of the chain", first, last)
}

// leftAsIs reports whether the segment, whose footer's magic is zero (all
// zeros, or a seal that did not finish: recovery treats both alike), can
// only be one that recovery left unsealed, the next sealed segment
// chaining past it. Recovery leaves as it is a segment whose header is
// bad or whose walk (Quiescent, as here) meets a torn frame.
//
// A segment sealed and damaged afterwards can look the same, and the next
// one chains to its lost digest: comparing with the digest before it
// would report a link as broken that is not. So the footer's magic must
// be zeros in the file (a file cut short reads as zeros where it is
// missing; a damaged footer with its magic was written, and is a footer
// finding), and an intact frame must lie between the last damage and the
// footer: then one damage running from the records to the end of the
// file (a zeroed page or sector there, a garbled tail) cannot be what
// took the footer. What still passes is ambiguous, and reported: a sealed
// segment damaged in its records and, apart, in its footer (or just its
// magic), or a power loss under SyncNone (which orders no writeback) that
// lost its footer's page (or kept it as it was in the middle of the
// seal's store) and one in its middle while the next footer reached the
// disk; the link after it is then reported broken beside the segment's
// own findings. A damaged END claim, which recovery also leaves as it is,
// reaches the record limit, so no frame follows it: the link past it is
// not checked.
func (c *checker) leftAsIs() bool {
	return !c.r.rep.Archived && c.valid == int64(len(c.img)) && c.refused && c.resumed
}
