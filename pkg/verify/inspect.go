package verify

import (
	"bytes"
	"errors"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Inspection is one segment opened for `auditseg inspect`: its header,
// footer and every slot of its record area as the shared walker sees them,
// damaged ones included. Close it when done; slices it hands out alias the
// image.
type Inspection struct {
	Path     string
	Archived bool
	FileSize int64
	// ArchiveSize is, for an archive, the size of the .seg.zst file
	// itself (FileSize is its content's).
	ArchiveSize int64
	Header      segment.Header
	// HeaderErr: the header is unusable. CheckErr: it is usable but
	// disagrees with the file (size, or the sequence in the file name).
	HeaderErr, CheckErr error
	// Seq is the sequence the frames are checked with: the header's, or
	// the file name's when the header is unusable (SeqFromName).
	Seq         uint64
	SeqFromName bool
	// Footer is valid when FooterErr is nil; segment.ErrNoFooter means
	// unsealed.
	Footer    segment.Footer
	FooterErr error
	// SummaryErr: an archive's summary (the copy of its header and footer
	// after the compressed frame) is damaged or does not match.
	SummaryErr error
	// ArchiveErr: the archive's compressed content is damaged
	// (segment.OpenSalvaged). What decodes of it is inspected: all of
	// it when only the content checksum failed or the damage lies after
	// the segment, else up to the offset from which it is lost (Cut).
	ArchiveErr *segment.ArchiveDamage
	// Cut is where the bytes of the segment the file holds end when it
	// holds fewer than its header says (-1 when it holds them all): a
	// segment file cut short, an archive whose content is, or whose
	// content is lost from there (ArchiveErr; Cut is then less than
	// FileSize). Past it the segment reads as zeros that are none of the
	// file's, which Slot.Bytes and FooterBytes leave out.
	Cut int64
	// FooterAt is the offset of the footer: where the header puts it,
	// or, the header damaged, the file name's sequence and the size
	// (see SeqFromName). -1 when neither can place it: the footer is
	// then unknown, whatever is cut (FooterErr is the header's).
	FooterAt int64

	im             *segment.Image
	walkable       bool
	header, footer []byte // copies
}

// Slot kinds, in the order a segment holds them.
const (
	SlotData     = "data"
	SlotPad      = "pad"
	SlotEnd      = "end"
	SlotReserved = "reserved" // claimed, never committed; skipped by its claimed extent
	SlotGap      = "gap"      // zeros before the next frame
	SlotTorn     = "torn"     // damaged bytes up to the next frame whose CRC matches
	SlotTail     = "tail"     // zeros to the record limit: never written
	SlotGarbage  = "garbage"  // non-zero bytes after the END frame's header
)

// Slot is one place in the record area.
type Slot struct {
	Kind   string
	Offset int64
	Len    int64 // bytes covered
	// Frame is the slot decoded at Offset (zero for garbage).
	Frame segment.Frame
	// CRC is "ok" for a committed frame, "bad" when the checksum does not
	// match, and "-" when it was not reached or does not apply.
	CRC string
	// Reason says why a torn slot is torn.
	Reason string
	// Bytes are the slot's bytes the file holds (none past
	// Inspection.Cut), aliasing the image (nil for the tail).
	Bytes []byte

	path string // the file, and its frames' CRC seed: for AppendPayload
	seed uint32
}

// AppendPayload appends a data slot's payload to dst, copied from the
// image and checked against the CRC its frame stores
// (segment.AppendChecked). Frame.Payload aliases the mapping, which shows
// the file as it is now: cut since the walk checked the frame, the rest
// of the cut page reads as zeros without a fault, and written to, other
// bytes. Then, or if the copy faults, dst comes back unchanged with a
// *segment.ChangedError naming the file and the offset. Other slots
// append nothing.
func (s Slot) AppendPayload(dst []byte) ([]byte, error) {
	if s.Kind != SlotData {
		return dst, nil
	}
	f := &s.Frame
	return segment.AppendChecked(dst, s.path, "inspected", s.seed, s.Offset, f.Time, f.CRC, f.Payload)
}

// Inspect opens a segment file or archive for inspection. Only what
// prevents reading the file is an error; damage is described. An error
// wrapping segment.ErrCorrupt is damage that leaves nothing to inspect
// (an archive none of whose segment decodes, a file larger than any
// segment), which verify reports as a finding; any other, that the file
// cannot be read. path is read as segment.CleanName reads it, as verify
// and the reader read it.
func Inspect(path string) (*Inspection, error) {
	path = segment.CleanName(path)
	im, err := segment.OpenImage(path)
	var damage *segment.ArchiveDamage
	if errors.As(err, &damage) {
		// What decodes is shown, as verify and the reader read it; the
		// damage only when nothing does.
		if sim, serr := segment.OpenSalvaged(path); serr == nil {
			im, err = sim, nil
		}
	}
	if err != nil {
		return nil, err
	}
	in := &Inspection{Path: path, Archived: im.Archived, FileSize: im.FileSize, ArchiveSize: im.ArchiveSize, Header: im.Header,
		HeaderErr: im.HeaderErr, Seq: im.Header.Seq, ArchiveErr: damage, Cut: -1, FooterAt: -1, im: im}
	if v := im.Valid(); v < int64(len(im.Data)) {
		in.Cut = v
	}
	if err := im.Guard(in.decode); err != nil {
		im.Close()
		return nil, err
	}
	return in, nil
}

// decode reads the footer, the summary and the checks from the image, and
// keeps copies of the raw header and footer, so that nothing but Slots
// reads the mapping afterwards.
func (in *Inspection) decode() {
	im := in.im
	in.SummaryErr = im.CheckSummary()
	if im.HeaderErr == nil {
		in.CheckErr = im.Check()
		in.walkable = true
		in.Footer, in.FooterErr = im.Footer()
	} else if im.ReadByName() {
		in.Seq, in.SeqFromName, in.walkable = im.Header.Seq, true, true
		in.Footer, in.FooterErr = im.Footer()
	} else {
		in.FooterErr = im.HeaderErr
	}
	// What the file holds of its header, all of it when it is shorter
	// than one: --hex shows those bytes (it showed none).
	in.header = bytes.Clone(in.held(0, min(segment.HeaderSize, int64(len(im.Data)))))
	if in.walkable {
		in.FooterAt = int64(len(im.Data)) - segment.FooterSize
		if b := in.held(in.FooterAt, int64(len(im.Data))); len(b) > 0 {
			in.footer = bytes.Clone(b)
		}
	}
}

// held returns the bytes of the image from off to end that the file
// holds: none past Cut.
func (in *Inspection) held(off, end int64) []byte {
	if in.Cut >= 0 {
		end = min(end, max(in.Cut, off))
	}
	return in.im.Data[off:end]
}

// HeaderBytes returns the raw header: the part of it the file holds (all
// of a file shorter than a header).
func (in *Inspection) HeaderBytes() []byte { return in.header }

// FooterBytes returns the raw footer: the part of it the file holds (see
// Cut), nil when it holds none of it.
func (in *Inspection) FooterBytes() []byte { return in.footer }

// Sealed reports whether the footer decodes.
func (in *Inspection) Sealed() bool { return in.FooterErr == nil }

// Unsealed reports whether the footer's magic is zeros: never sealed, or
// a seal that did not finish (segment.ErrSealUnfinished).
func (in *Inspection) Unsealed() bool { return errors.Is(in.FooterErr, segment.ErrNoFooter) }

// Slots calls fn for every slot of the record area until fn returns false.
// It does nothing when the header is unusable and the file name gives no
// sequence to check frames with. The error says the file shrank while it
// was read, through Slots or through the slots' Bytes in fn (the file is
// mapped).
func (in *Inspection) Slots(fn func(Slot) bool) error {
	if !in.walkable {
		return nil
	}
	return in.im.Guard(func() { in.slots(fn) })
}

func (in *Inspection) slots(fn func(Slot) bool) {
	img := in.im.Data
	limit := segment.RecordLimit(int64(len(img)))
	endAt, stopped := int64(-1), false
	// As verify and the reader walk it: in a sealed segment a claim or a
	// zero gap is damage (FORMAT.md section 7), not a writer's leftover.
	mode := segment.Quiescent
	if in.Sealed() {
		mode = segment.Sealed
	}
	seed := segment.FrameSeed(in.Seq)
	segment.WalkValid(img, in.Seq, segment.HeaderSize, mode, in.im.Valid(), func(ev segment.Event) bool {
		s := Slot{Offset: ev.Offset, Len: ev.Len, Frame: ev.Frame, CRC: "-", path: in.Path, seed: seed}
		if ev.Kind != segment.EvTail {
			s.Bytes = in.held(ev.Offset, ev.Offset+ev.Len)
		}
		switch ev.Kind {
		case segment.EvFrame:
			s.Kind, s.CRC = SlotData, "ok"
			if ev.Frame.Type == segment.TypePad {
				s.Kind = SlotPad
			}
		case segment.EvEnd:
			s.Kind, s.CRC = SlotEnd, "ok"
			s.Bytes = in.held(ev.Offset, ev.Offset+segment.FrameHeaderSize)
			endAt = ev.Offset
		case segment.EvReserved:
			s.Kind = SlotReserved
		case segment.EvGap:
			s.Kind = SlotGap
		case segment.EvTorn:
			s.Kind, s.Reason = SlotTorn, "not a frame"
			var ce *segment.CorruptError
			if errors.As(ev.Frame.Err, &ce) {
				s.Reason = ce.Reason
			}
			if strings.Contains(s.Reason, "checksum") {
				s.CRC = "bad"
			}
		case segment.EvTail:
			s.Kind = SlotTail
		default:
			return true
		}
		if !fn(s) {
			stopped = true
			return false
		}
		return true
	})
	if stopped || endAt < 0 {
		return
	}
	if p := segment.ZeroFrom(img, endAt+segment.FrameHeaderSize, min(limit, in.im.Valid())); p < min(limit, in.im.Valid()) {
		fn(Slot{Kind: SlotGarbage, Offset: p, Len: limit - p, CRC: "-", Bytes: in.held(p, limit),
			Reason: "non-zero bytes after the END frame"})
	}
}

// Close releases the image.
func (in *Inspection) Close() error { return in.im.Close() }
