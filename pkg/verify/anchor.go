package verify

import (
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
)

// The digest chain has no key: whoever can write the log can change a
// record and compute every footer after it again, and the chain still
// links (FORMAT.md section 6). So can whoever removes the newest segments:
// the log just ends earlier. What catches both is a digest kept outside
// the log: an anchor, a sealed segment's digest recorded elsewhere (the
// `digest` of the newest sealed segment in `auditseg verify -o json`, say,
// stored by the CI job that ran it) and given to a later run. Every
// segment up to the anchored one is then pinned: changing any of them
// changes the anchored segment's digest, or breaks a link a full or quick
// run checks; removing the anchored segment from the end of the log is a
// finding too.

// Anchor is a digest recorded outside the log: sealed segment Seq's
// footer digest as a run of verify saw it.
type Anchor struct {
	Seq    uint64
	Digest [segment.DigestSize]byte
}

// String is the anchor as ParseAnchor reads it: SEQ:HEX.
func (a Anchor) String() string { return fmt.Sprintf("%d:%x", a.Seq, a.Digest) }

// ParseAnchor reads an anchor written SEQ:HEX: the segment's sequence
// number in decimal and its 32-byte digest in 64 hex digits.
func ParseAnchor(s string) (Anchor, error) {
	seqText, hexText, ok := strings.Cut(s, ":")
	if !ok {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:DIGEST, a segment number and its digest in hex: %w", s, os.ErrInvalid)
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return Anchor{}, fmt.Errorf("anchor %q: segment number %q is not a number from 1 on: %w", s, seqText, os.ErrInvalid)
	}
	var a Anchor
	a.Seq = seq
	if len(hexText) != hex.EncodedLen(segment.DigestSize) {
		return Anchor{}, fmt.Errorf("anchor %q: the digest must be %d hex digits, not %d: %w", s, hex.EncodedLen(segment.DigestSize), len(hexText), os.ErrInvalid)
	}
	if _, err := hex.Decode(a.Digest[:], []byte(hexText)); err != nil {
		return Anchor{}, fmt.Errorf("anchor %q: the digest must be %d hex digits: %w", s, 2*segment.DigestSize, os.ErrInvalid)
	}
	return a, nil
}

// AnchorReport says what became of one anchor.
type AnchorReport struct {
	Seq    uint64 `json:"seq"`
	Digest string `json:"digest"` // hex
	// Checked: the anchored segment was found and its footer compared
	// (OK: it matched), or, removed, it is the one before the oldest
	// present, whose previous digest was compared, or it is missing from
	// the end of the log or from its middle (a finding either way). Not
	// checked: the segment is older than the one before the oldest present (removed by retention, which verify
	// cannot tell from any other removal of old segments), or could not
	// be read (an error of the run).
	Checked bool `json:"checked"`
	OK      bool `json:"ok"`
}

// NextAnchor is the anchor a later run can be given: the digest of the
// newest sealed segment of the one log directory this run checked whole
// and found clean, a digest computed from the segment and matched. ok is
// false otherwise. Quick mode takes the digest from the footer without
// computing it, and a run over segment files checks none of the others:
// such an anchor would pin segments nothing checked.
func (r *Report) NextAnchor() (a Anchor, ok bool) {
	if !r.whole || r.ExitCode(false) != ExitClean {
		return Anchor{}, false
	}
	for i := len(r.Segments) - 1; i >= 0; i-- {
		s := r.Segments[i]
		if s.State != StateSealed && s.State != StateRecovered {
			continue
		}
		d, err := hex.DecodeString(s.Digest)
		if !s.DigestChecked || !s.DigestOK || err != nil || len(d) != segment.DigestSize {
			return Anchor{}, false
		}
		a.Seq = s.Seq
		copy(a.Digest[:], d)
		return a, true
	}
	return Anchor{}, false
}

// anchors holds a log's anchors by segment, each with its report.
type anchors map[uint64]*AnchorReport

// newAnchors gives u, the one log of a run over paths, its anchors.
func newAnchors(as []Anchor, u *unit, paths []string) (anchors, error) {
	if len(as) == 0 {
		return nil, nil
	}
	if !u.whole {
		return nil, fmt.Errorf("verify: anchors need a log directory, not segment files (%s): %w", strings.Join(paths, ", "), os.ErrInvalid)
	}
	m := anchors{}
	for _, a := range as {
		d := hex.EncodeToString(a.Digest[:])
		if prev := m[a.Seq]; prev != nil && prev.Digest != d {
			return nil, fmt.Errorf("verify: two anchors for segment %d with different digests: %w", a.Seq, os.ErrInvalid)
		}
		m[a.Seq] = &AnchorReport{Seq: a.Seq, Digest: d}
	}
	return m, nil
}

// check compares r, present in the log, with its anchor if it has one.
// lost is r's digest computed again from its frames, for a segment whose
// footer is lost (chain.lostDigest).
func (m anchors) check(r *result, lost func() ([segment.DigestSize]byte, bool)) (Finding, bool) {
	a := m[r.order]
	if a == nil || r.ioErr != nil {
		return Finding{}, false
	}
	a.Checked = true
	ft, sealed, at := r.chainFooter()
	computed := ""
	if !sealed && r.rehash {
		// Bit rot that took the footer alone took nothing the digest
		// covers: what the anchor pins can still be compared.
		if d, ok := lost(); ok {
			ft.Digest, sealed, computed = d, true, " (computed from its frames: its footer is lost)"
		}
	}
	f := Finding{Class: Chain, Path: r.rep.Path, Seq: r.rep.Seq, Offset: at}
	switch got := hex.EncodeToString(ft.Digest[:]); {
	case !sealed:
		f.Reason = fmt.Sprintf("segment %d is anchored (digest %s…) but has no footer to compare", r.order, a.Digest[:16])
	case got != a.Digest:
		// In full: an anchor copied with one digit wrong differs from the
		// footer anywhere, and prefixes alike would read as the same digest.
		f.Reason = fmt.Sprintf("digest %s%s is not the anchor's %s: segment %d, or one before it, was rewritten since the anchor was taken", got, computed, a.Digest, r.order)
	case r.rep.DigestChecked && !r.rep.DigestOK:
		// The footer is the anchor's, the records are not: the digest
		// finding reports them; the anchor does not match what is there.
		return Finding{}, false
	default:
		a.OK = true
		return Finding{}, false
	}
	return f, true
}

// link compares the previous digest of r, the oldest segment of the log
// present, with the anchor of the segment before it, which is gone: that
// link is the one thing of the anchored segment left to compare. Without
// it an anchor of the last segment retention removed was not checked, and
// every segment after it could be rewritten, footers computed again from
// any previous digest, and pass.
func (m anchors) link(r *result) (Finding, bool) {
	a := m[r.order-1]
	if a == nil || r.ioErr != nil {
		return Finding{}, false
	}
	ft, sealed, at := r.chainFooter()
	if !sealed {
		return Finding{}, false
	}
	a.Checked = true
	if got := hex.EncodeToString(ft.PrevDigest[:]); got != a.Digest {
		return Finding{Class: Chain, Path: r.rep.Path, Seq: r.rep.Seq, Offset: at,
			Reason: fmt.Sprintf("previous digest %s is not the anchor's %s of segment %d, removed: segment %d was resealed since the anchor was taken (or the anchor is another log's)", got, a.Digest, a.Seq, r.order)}, true
	}
	a.OK = true
	return Finding{}, false
}

// missing reports the anchors whose segments the log lacks: past its
// newest segment (removed from its end, or another log), or between two
// present ones. One older than the oldest present is left unchecked, as
// is one removed while the log was read with every older segment
// (retention); one removed then while an older one stays is not
// retention's, which removes the oldest first.
func (m anchors) missing(u *unit, present map[uint64]bool, newest uint64) []Finding {
	var oldest uint64
	if len(u.results) > 0 {
		oldest = u.results[0].order
	}
	for seq := range u.gone {
		if oldest == 0 || seq < oldest {
			oldest = seq // listed: the log reached that far back
		}
	}
	var fs []Finding
	for _, seq := range slices.Sorted(maps.Keys(m)) {
		a := m[seq]
		if present[seq] || seq < oldest || u.gone[seq] && !olderStay(u, seq) {
			continue
		}
		a.Checked = true
		f := Finding{Class: Chain, Path: filepath.Join(u.dir, segment.FileName(seq)), Seq: seq}
		switch {
		case u.gone[seq]:
			f.Reason = fmt.Sprintf("segment %d is anchored but was removed while the log was read, and older segments stay (retention removes the oldest first)", seq)
		case newest == 0:
			f.Reason = fmt.Sprintf("segment %d is anchored but missing: the log holds no segment", seq)
		case seq > newest:
			f.Reason = fmt.Sprintf("segment %d is anchored but missing: the log ends at segment %d (segments removed from its end, or another log)", seq, newest)
		default:
			f.Reason = fmt.Sprintf("segment %d is anchored but missing", seq)
		}
		fs = append(fs, f)
	}
	return fs
}

// olderStay reports whether a segment older than seq, read in this run,
// is present still (removedWhileRead's test for a hole).
func olderStay(u *unit, seq uint64) bool {
	i := sort.Search(len(u.results), func(k int) bool { return u.results[k].order >= seq })
	return u.older.OlderPresent(u.dir, i, func(k int) uint64 { return u.results[k].order })
}

// reports lists the anchors' reports in segment order.
func (m anchors) reports() []AnchorReport {
	var rs []AnchorReport
	for _, seq := range slices.Sorted(maps.Keys(m)) {
		rs = append(rs, *m[seq])
	}
	return rs
}
