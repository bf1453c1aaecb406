package speccheck

import (
	"bytes"
	"hash/crc32"

	"lukechampine.com/blake3"
)

// Footer is section 6's table.
type Footer struct {
	Magic    [8]byte
	Seq      uint64
	Records  uint64
	End      int64
	MinTime  int64
	MaxTime  int64
	SealedAt int64
	Flags    uint32
	Prev     [32]byte
	Digest   [32]byte
	CRC      uint32
}

// errNotSealed is a footer whose magic bytes are zero in a segment file.
var errNotSealed = reject(-1, "not sealed")

// decodeFooter is section 6's DecodeFooter over the last 128 bytes of a
// segment of the given size and header sequence. inFile is false for an
// archive's content or summary copy, where a missing magic is damage.
func decodeFooter(b []byte, size int64, seq uint64, inFile bool) (Footer, error) {
	var f Footer
	copy(f.Magic[:], b[0:8])
	f.Seq = le.Uint64(b[8:])
	f.Records = le.Uint64(b[16:])
	f.End = int64(le.Uint64(b[24:]))
	f.MinTime = int64(le.Uint64(b[32:]))
	f.MaxTime = int64(le.Uint64(b[40:]))
	f.SealedAt = int64(le.Uint64(b[48:]))
	f.Flags = le.Uint32(b[56:])
	copy(f.Prev[:], b[60:92])
	copy(f.Digest[:], b[92:124])
	f.CRC = le.Uint32(b[124:])
	base := size - footerSize
	switch {
	case f.Magic == [8]byte{} && inFile:
		return f, errNotSealed
	case string(f.Magic[:]) != "AUDSEAL1":
		return f, reject(base, "bad footer magic")
	case crc32.Checksum(b[0:124], castagnoli) != f.CRC:
		return f, reject(size-4, "footer CRC")
	case f.Seq != seq:
		return f, reject(size-120, "footer sequence %d, header %d", f.Seq, seq)
	case f.End%8 != 0 || f.End < headerSize || f.End > dataLimit(size):
		return f, reject(size-104, "end offset %d", f.End)
	}
	return f, nil
}

// digest is section 6's BLAKE3-256(previous digest ‖ file[0, end+24)).
func digest(prev [32]byte, img []byte, end int64) [32]byte {
	h := blake3.New(32, nil)
	h.Write(prev[:])
	h.Write(img[:end+frameHdrSize])
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// Segment is everything the clean-room decoder reads from one segment.
type Segment struct {
	NameSeq  uint64
	Header   Header
	Footer   Footer
	Sealed   bool
	Events   []Event
	Problems []error
}

const timeTolerance = int64(3600e9) // verify's default, section 4.8

// checkSegment decodes and verifies one segment image (a file's bytes, or
// an archive's content) named nameSeq, chained from prev when known.
// last says whether it is the newest segment of a closed log, which may be
// an unsealed, empty one left for the next writer (section 1).
func checkSegment(nameSeq uint64, img []byte, prev *[32]byte, last bool, inFile bool) *Segment {
	return checkSegmentMode(nameSeq, img, prev, last, inFile, false)
}

// checkSegmentMode is checkSegment, or with quick what section 6 says
// `verify --quick` checks of a sealed segment: the header, the footer, a
// committed END frame at its end offset, its flags, its sealing time and
// its link; no frame is walked, no digest computed.
func checkSegmentMode(nameSeq uint64, img []byte, prev *[32]byte, last, inFile, quick bool) *Segment {
	s := &Segment{NameSeq: nameSeq}
	bad := func(off int64, format string, args ...any) {
		s.Problems = append(s.Problems, reject(off, format, args...))
	}
	h, err := decodeHeader(img)
	s.Header = h
	if err != nil {
		s.Problems = append(s.Problems, err)
		// Section 3: the frames are still read, with the name's
		// sequence number and the file's size, when that is a segment's.
		if size := int64(len(img)); validSize(uint64(size)) && !quick {
			_, ferr := decodeFooter(img[size-footerSize:], size, nameSeq, inFile)
			s.Events = walk(img, size, nameSeq, ferr == nil)
		}
		return s
	}
	size := int64(h.Size)
	if int64(len(img)) != size {
		bad(min(size, int64(len(img))), "file size %d, header %d", len(img), size)
		return s
	}
	if h.Seq != nameSeq {
		bad(16, "header sequence %d, name %d", h.Seq, nameSeq)
	}
	f, err := decodeFooter(img[size-footerSize:], size, h.Seq, inFile)
	s.Footer = f
	s.Sealed = err == nil
	if err != nil && (err != errNotSealed || !inFile) {
		s.Problems = append(s.Problems, err)
	}
	if quick && s.Sealed {
		if st, end, _, _ := decodeSlot(img, size, h.Seq, f.End); st != slotCommitted || end.Type != typeEnd {
			bad(f.End, "no END frame at the footer's end offset")
		}
		checkSealing(s, prev, bad)
		return s
	}
	s.Events = walk(img, size, h.Seq, s.Sealed)
	if !s.Sealed {
		empty := len(s.Events) == 1 && s.Events[0].Kind == "tail" && s.Events[0].Off == headerSize &&
			bytes.Count(img[size-footerSize:], []byte{0}) == footerSize
		if err == errNotSealed && !(last && empty) {
			bad(size-footerSize, "not sealed")
		}
		return s
	}
	var records uint64
	var minT, maxT int64
	end := int64(-1)
	for _, e := range s.Events {
		switch e.Kind {
		case "frame":
			fl := int64(e.Frame.Length)
			if !allZero(img[e.Off+fl : e.Off+align(fl)]) {
				bad(e.Off+fl, "non-zero padding")
			}
			if e.Frame.Type != typeData {
				continue
			}
			if records == 0 || e.Frame.Time < minT {
				minT = e.Frame.Time
			}
			if records == 0 || e.Frame.Time > maxT {
				maxT = e.Frame.Time
			}
			records++
			if e.Frame.Time < h.Created-timeTolerance || e.Frame.Time > f.SealedAt+timeTolerance {
				bad(e.Off, "record time out of range")
			}
		case "end":
			end = e.Off
			if !allZero(img[e.Off+frameHdrSize : recordLimit(size)]) {
				bad(e.Off+frameHdrSize, "garbage after END")
			}
		default:
			bad(e.Off, "%s over %d bytes", e.Kind, e.Len)
		}
	}
	switch {
	case end != f.End:
		bad(size-104, "END at %d, footer says %d", end, f.End)
	case f.Records != records || f.MinTime != minT || f.MaxTime != maxT:
		bad(size-112, "footer tally %d/%d/%d, walk %d/%d/%d", f.Records, f.MinTime, f.MaxTime, records, minT, maxT)
	case digest(f.Prev, img, f.End) != f.Digest:
		bad(size-36, "digest")
	}
	checkSealing(s, prev, bad)
	return s
}

// checkSealing checks what a sealed footer says beside its tally and
// digest: flags, sealing time, link to the previous digest when known.
func checkSealing(s *Segment, prev *[32]byte, bad func(int64, string, ...any)) {
	f, size := s.Footer, int64(s.Header.Size)
	switch {
	case f.Flags&^flagRecovered != 0:
		bad(size-72, "footer flags %#x", f.Flags)
	case f.SealedAt < s.Header.Created-timeTolerance:
		bad(size-80, "sealed before created")
	case prev != nil && *prev != f.Prev:
		bad(size-68, "chain")
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
