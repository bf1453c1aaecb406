package segment

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Refusal is writer.Open's recovery's judgment of a dead writer's unsealed
// segment: whether it leaves the segment as it is, unsealed (FORMAT.md
// section 8, steps 3.1, 3.2, 3.4 and 3.5), or finishes and seals it. Recovery
// acts on it; verify calls such a segment crash residue (exit 3) only if
// recovery finishes it, and the reader calls its reservations, zero gaps
// and missing END crash leftovers only then. All three judge with a
// Refusal, so that they cannot disagree: RecoveryRefusal judges the
// header, Event each event of a Quiescent walk of the segment. Each feeds
// it from its own walk (recovery collects its repairs in the same walk,
// verify reads through windows), so nothing is walked twice.
type Refusal struct {
	path  string
	img   []byte
	valid int64
	first *CorruptError
}

// RecoveryRefusal starts recovery's judgment of the segment file or
// archive at path, fileSize bytes long, whose header decoded to h, or did
// not (herr): it refuses a header that does not decode or disagrees with
// the file (CheckHeader; step 3.1), at the header's own error's offset,
// saying which of the two and what is wrong; then an archive, which
// recovery takes for sealed and never repairs (steps 2 and 3), at its
// footer. img is the segment (Image.Data) whose walk's events Event
// judges, its first valid bytes from the file: no byte past them is read.
// img is nil when only the header is judged (recovery, before it maps the
// file).
func RecoveryRefusal(path string, h Header, herr error, fileSize int64, img []byte, valid int64) Refusal {
	r := Refusal{path: path, img: img, valid: valid}
	// The reason is read after "leaves it unsealed: " at another offset
	// (verify's missing-end, the reader's leftovers): "bad magic" alone
	// would not say it is the header's.
	what := "its header is damaged"
	if herr == nil {
		herr, what = CheckHeader(path, h, fileSize), "its header disagrees with the file"
	}
	if herr != nil {
		r.first = &CorruptError{Path: path, Reason: fmt.Sprintf("its header cannot be read: %v", herr)}
		var ce *CorruptError
		if errors.As(herr, &ce) {
			r.first.Offset, r.first.Reason = ce.Offset, what+": "+ce.Reason
		}
	} else if IsArchiveName(filepath.Base(path)) {
		r.first = &CorruptError{Path: path, Offset: RecordLimit(h.Size),
			Reason: "it is an archive, which recovery takes for sealed and never repairs (compress-finished archives only sealed segments)"}
	}
	return r
}

// RecoveryRefusal is the package function for the image: its header, and
// the events of a walk of Data.
func (im *Image) RecoveryRefusal() Refusal {
	return RecoveryRefusal(im.Path, im.Header, im.HeaderErr, im.FileSize, im.Data, im.Valid())
}

// Event judges ev, the next event of a Quiescent walk of the segment from
// HeaderSize, and returns why recovery refuses the segment for it, nil if
// recovery passes or repairs it: a torn slot (EvTorn; step 3.2) but a
// torn tail recovery finishes (TornTail; step 3.5), a torn tail with no
// room for the END frame after it, or an END claim with a non-zero byte
// behind its header (EndClaim; step 3.4), the error then at that byte. The first refusal, the header's included, is
// kept (Refused): a walk may stop at it. A claim in a segment not all
// read from its file (shorter than its header says, refused for that) is
// not looked behind.
func (r *Refusal) Event(ev *Event) *CorruptError {
	var ce *CorruptError
	switch ev.Kind {
	case EvTorn:
		pad, tail := r.tornTail(ev)
		switch {
		case !tail:
			ce = &CorruptError{Path: r.path, Offset: ev.Offset,
				Reason: fmt.Sprintf("a committed frame in it is torn (at offset %d)", ev.Offset)}
		case ev.Offset+pad > DataLimit(int64(len(r.img))):
			ce = &CorruptError{Path: r.path, Offset: ev.Offset,
				Reason: fmt.Sprintf("a committed frame in it is torn (at offset %d), its bytes reaching %d: no room for an END frame after a PAD over them", ev.Offset, ev.Offset+pad)}
		}
	case EvReserved, EvGap:
		if r.valid != int64(len(r.img)) {
			break
		}
		if claim, garbage := EndClaim(r.img, ev.Offset, ev.Len); claim && garbage < RecordLimit(int64(len(r.img))) {
			ce = &CorruptError{Path: r.path, Offset: garbage,
				Reason: fmt.Sprintf("its END claim at %d has a non-zero byte at %d behind its header", ev.Offset, garbage)}
		}
	}
	if r.first == nil {
		r.first = ce
	}
	return ce
}

// TornTail reports whether ev, an event of a Quiescent walk of the
// segment, is a torn tail recovery finishes (FORMAT.md section 8, step
// 3.5), and the extent of the PAD frame it writes at ev.Offset: up to
// the last non-zero byte, aligned, at least a frame header. A torn tail
// is an EvTorn that runs to the record limit (no intact committed frame
// follows it) in a segment read whole from its file, with room for the
// END frame after the PAD: the last frame, committed but torn by a power
// cut before its Append returned (its pages reached the disk apart),
// crash residue, not damage. Any other EvTorn refuses the segment.
func (r *Refusal) TornTail(ev *Event) (pad int64, ok bool) {
	pad, ok = r.tornTail(ev)
	return pad, ok && ev.Offset+pad <= DataLimit(int64(len(r.img)))
}

// tornTail is TornTail whether or not the END frame fits.
func (r *Refusal) tornTail(ev *Event) (int64, bool) {
	size := int64(len(r.img))
	limit := RecordLimit(size)
	// With no image (a header judged alone) limit is negative: no match.
	if ev.Kind != EvTorn || r.valid != size || ev.Offset < HeaderSize || ev.Offset%Alignment != 0 || ev.Offset+ev.Len != limit {
		return 0, false
	}
	return max(lastNonZero(r.img, ev.Offset, limit)-ev.Offset, FrameHeaderSize), true
}

// lastNonZero returns the aligned offset after the word holding the last
// non-zero byte in [from, limit), both aligned, or from if there is none.
func lastNonZero(img []byte, from, limit int64) int64 {
	for p := limit; p > from; p -= Alignment {
		if le.Uint64(img[p-Alignment:]) != 0 {
			return p
		}
	}
	return from
}

// Refused returns the first refusal met, nil if recovery finishes and
// seals the segment (as far as it was judged). Its Reason says why, for
// a message that goes on from "writer.Open leaves the segment unsealed: ".
func (r *Refusal) Refused() *CorruptError { return r.first }
