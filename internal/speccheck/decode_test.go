package speccheck

// A decoder of the auditseg format written from docs/FORMAT.md alone (the
// section numbers below are that document's). It deliberately imports
// nothing of pkg/segment: where it and pkg/segment disagree, one of them or
// the document is wrong.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

var le = binary.LittleEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Wire constants (sections 2, 3, 4.1, 6).
const (
	headerSize    = 64
	frameHdrSize  = 24
	footerSize    = 128
	alignment     = 8
	endRoom       = 24
	minSegSize    = 64 << 10
	maxSegSize    = 1 << 30
	typeData      = 0x01
	typePad       = 0x02
	typeEnd       = 0x19
	flagRecovered = 1
)

func align(n int64) int64 { return (n + alignment - 1) &^ (alignment - 1) }

func recordLimit(size int64) int64 { return size - footerSize }

func dataLimit(size int64) int64 { return recordLimit(size) - endRoom }

// specError is a rejection: the offset the spec names and why.
type specError struct {
	Off    int64
	Reason string
}

func (e *specError) Error() string { return fmt.Sprintf("offset %d: %s", e.Off, e.Reason) }

func reject(off int64, format string, args ...any) error {
	return &specError{Off: off, Reason: fmt.Sprintf(format, args...)}
}

// Header is section 3's table.
type Header struct {
	Magic      [8]byte
	Version    uint16
	FrameHdr   uint16
	Align      uint16
	FooterSize uint16
	Seq        uint64
	Size       uint64
	Created    int64
	Reserved   [20]byte
	CRC        uint32
}

// decodeHeader applies section 3's checks in the order it lists them.
func decodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < headerSize {
		return h, reject(0, "file shorter than the header")
	}
	copy(h.Magic[:], b[0:8])
	h.Version = le.Uint16(b[8:])
	h.FrameHdr = le.Uint16(b[10:])
	h.Align = le.Uint16(b[12:])
	h.FooterSize = le.Uint16(b[14:])
	h.Seq = le.Uint64(b[16:])
	h.Size = le.Uint64(b[24:])
	h.Created = int64(le.Uint64(b[32:]))
	copy(h.Reserved[:], b[40:60])
	h.CRC = le.Uint32(b[60:])
	switch {
	case string(h.Magic[:]) != "AUDITSEG":
		return h, reject(0, "bad magic")
	case crc32.Checksum(b[0:60], castagnoli) != h.CRC:
		return h, reject(60, "header CRC")
	case h.Version != 1:
		return h, reject(8, "version %d", h.Version)
	case h.FrameHdr != frameHdrSize || h.Align != alignment || h.FooterSize != footerSize:
		return h, reject(10, "layout constants")
	case h.Reserved != [20]byte{}:
		return h, reject(40, "reserved bytes")
	case !validSize(h.Size):
		return h, reject(24, "segment size %d", h.Size)
	}
	return h, nil
}

func validSize(s uint64) bool { return s%8 == 0 && s >= minSegSize && s <= maxSegSize }

// Frame is section 4.1's table plus where the frame sits.
type Frame struct {
	Off      int64
	Length   int32
	CRC      uint32
	Type     byte
	Flags    byte
	Reserved uint16
	LenCopy  int32
	Time     int64
	Payload  []byte // DATA only
}

// Slot states of section 4.3.
type slotState int

const (
	slotUnwritten slotState = iota
	slotReserved
	slotTorn
	slotCommitted
)

// frameSeed and frameCRC are section 4.7.
func frameSeed(seq uint64) uint32 {
	var b [8]byte
	le.PutUint64(b[:], seq)
	return crc32.Checksum(b[:], castagnoli)
}

func frameCRC(seq uint64, off int64, covered []byte) uint32 {
	return crc32.Update(frameSeed(seq)^uint32(off), castagnoli, covered)
}

// decodeSlot reads the slot at off of a segment of the given size and
// sequence (section 4.3, then 4.4's checks in order for a committed one).
// For a reserved slot it returns the extent; for a torn one the reason.
func decodeSlot(img []byte, size int64, seq uint64, off int64) (st slotState, f Frame, extent int64, why string) {
	rl, dl := recordLimit(size), dataLimit(size)
	// 4.4 check 1 bounds the slot itself; a slot a walk asks about is
	// always inside the record area, but a resync candidate need not be.
	if off%8 != 0 || off < headerSize || off > rl-frameHdrSize {
		return slotTorn, f, 0, "offset out of the record area"
	}
	f.Off = off
	f.Length = int32(le.Uint32(img[off:]))
	l := int64(f.Length)
	switch {
	case l == 0:
		return slotUnwritten, f, 0, ""
	case l < 0:
		ext := align(-l)
		if ext >= frameHdrSize && off+ext <= dl || off <= dl && off+ext == rl {
			return slotReserved, f, ext, ""
		}
		return slotTorn, f, 0, "claim out of bounds"
	case l < frameHdrSize || off+align(l) > rl:
		return slotTorn, f, 0, "length out of bounds"
	}
	f.CRC = le.Uint32(img[off+4:])
	f.Type = img[off+8]
	f.Flags = img[off+9]
	f.Reserved = le.Uint16(img[off+10:])
	f.LenCopy = int32(le.Uint32(img[off+12:]))
	f.Time = int64(le.Uint64(img[off+16:]))
	end := off + l
	if f.Flags != 0 || f.Reserved != 0 {
		return slotTorn, f, 0, "flags or reserved bytes"
	}
	if f.LenCopy != f.Length {
		return slotTorn, f, 0, "length copy"
	}
	covered := img[off+8 : off+frameHdrSize]
	switch f.Type {
	case typeData:
		if end > dl {
			return slotTorn, f, 0, "DATA past DataLimit"
		}
		covered = img[off+8 : end]
		f.Payload = img[off+frameHdrSize : end]
	case typePad:
		if end > dl || l%8 != 0 {
			return slotTorn, f, 0, "PAD bounds"
		}
	case typeEnd:
		if end != rl || off > dl {
			return slotTorn, f, 0, "END bounds"
		}
	default:
		return slotTorn, f, 0, "invalid type"
	}
	if frameCRC(seq, off, covered) != f.CRC {
		return slotTorn, f, 0, "frame CRC"
	}
	return slotCommitted, f, 0, ""
}

// resync is section 7's resync point after damage at off.
func resync(img []byte, size int64, seq uint64, off int64) int64 {
	rl := recordLimit(size)
	for p := align(off + 1); p+frameHdrSize <= rl; p += 8 {
		if p < headerSize {
			continue
		}
		if st, _, _, _ := decodeSlot(img, size, seq, p); st == slotCommitted {
			return p
		}
	}
	return rl
}

// Event is one step of a walk (section 7), reduced to what the spec names.
type Event struct {
	Kind  string // "frame", "end", "reserved", "gap", "tail", "torn"
	Off   int64
	Len   int64 // the extent for reserved, gap, tail and torn
	Frame Frame
}

// walk is section 7's procedure from offset 64, in Sealed mode when sealed
// and Quiescent otherwise. Sealed differs only at claims and zero runs
// followed by a frame, which are damage there (a footer vouches that every
// frame was committed); its tail is still a tail, which the caller judges.
func walk(img []byte, size int64, seq uint64, sealed bool) []Event {
	return walkFrom(img, size, seq, headerSize, sealed)
}

// walkFrom is walk from another offset: a resume point, or (section 7)
// one that is not, an unaligned one or one below 64 being damage.
func walkFrom(img []byte, size int64, seq uint64, from int64, sealed bool) []Event {
	var evs []Event
	rl := recordLimit(size)
	// torn reports damage from start to the resync point of from.
	torn := func(start, from int64) int64 {
		p := resync(img, size, seq, from)
		evs = append(evs, Event{Kind: "torn", Off: start, Len: p - start})
		return p
	}
	off := from
	if (off%8 != 0 || off < headerSize) && off+frameHdrSize <= rl {
		off = torn(off, off)
	}
	for off+frameHdrSize <= rl {
		st, f, ext, _ := decodeSlot(img, size, seq, off)
		switch st {
		case slotCommitted:
			if f.Type == typeEnd {
				return append(evs, Event{Kind: "end", Off: off, Len: int64(f.Length), Frame: f})
			}
			evs = append(evs, Event{Kind: "frame", Off: off, Len: align(int64(f.Length)), Frame: f})
			off += align(int64(f.Length))
		case slotReserved:
			if sealed {
				off = torn(off, off)
				continue
			}
			evs = append(evs, Event{Kind: "reserved", Off: off, Len: ext})
			off += ext
		case slotUnwritten:
			next := off
			for next < rl && le.Uint64(img[next:]) == 0 {
				next += 8
			}
			if next >= rl {
				return append(evs, Event{Kind: "tail", Off: off, Len: rl - off})
			}
			nst, _, _, _ := decodeSlot(img, size, seq, next)
			switch {
			case nst != slotCommitted && nst != slotReserved:
				off = torn(off, next)
			case sealed || next-off < frameHdrSize:
				evs = append(evs, Event{Kind: "torn", Off: off, Len: next - off})
				off = next
			default:
				evs = append(evs, Event{Kind: "gap", Off: off, Len: next - off})
				off = next
			}
		default:
			off = torn(off, off)
		}
	}
	return evs
}
