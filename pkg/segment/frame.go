package segment

import (
	"hash/crc32"
	"slices"
	"sync/atomic"
	"unsafe"
)

// FrameState says what the commit word of a frame slot holds.
type FrameState uint8

const (
	// Unwritten: the length word is 0. Nobody has stored a claim here (yet).
	Unwritten FrameState = iota
	// Reserved: a negative length. A writer claimed the frame and has not
	// committed it; if the writer is gone, the frame never will be.
	Reserved
	// Committed: a positive length, a valid type and a matching CRC.
	Committed
	// Torn: the header is impossible or the CRC does not match. The bytes
	// were damaged after commit, or a page was torn by a power loss.
	Torn
)

func (s FrameState) String() string {
	switch s {
	case Unwritten:
		return "unwritten"
	case Reserved:
		return "reserved"
	case Committed:
		return "committed"
	case Torn:
		return "torn"
	}
	return "invalid"
}

// Frame is one decoded frame slot.
type Frame struct {
	Offset  int64 // file offset of the frame header
	Length  int32 // the commit word as read
	Type    byte  // read only when Length > 0 (0 for unwritten and reserved slots)
	Time    int64 // unix nanoseconds
	CRC     uint32
	State   FrameState
	Extent  int64  // aligned size; 0 for Unwritten, and for Torn when untrusted
	Payload []byte // DATA payload, aliasing the image; nil otherwise
	Err     error  // for Torn: why (a *CorruptError)
}

// FrameSeed is the checksum seed of segment seq: the CRC32C of the
// sequence number as 8 little-endian bytes. It is computed byte by byte
// here so that it never allocates (hash/crc32 makes its argument escape).
func FrameSeed(seq uint64) uint32 {
	c := ^uint32(0)
	for i := 0; i < 8; i++ {
		c = castagnoli[byte(c)^byte(seq>>(8*i))] ^ c>>8
	}
	return ^c
}

// FrameCRC is the checksum stored in a frame: CRC32C (Castagnoli) of the
// covered bytes — frame bytes 8..24 (type, flags, reserved, length copy,
// time) and, for DATA, the payload, which follows contiguously — continued
// from seed XOR the frame offset's low 32 bits, where seed is FrameSeed(seq).
// The length is covered through its copy at byte 12, which must equal the
// commit word. Because the seed differs per segment and per offset, a frame
// copied from another segment or moved within one never validates (but
// for a 2^-32 chance). covered is frame[8:24] or frame[8:length], read in
// place from the mapping, so computing it allocates nothing.
func FrameCRC(seed uint32, off int64, covered []byte) uint32 {
	return crc32.Update(seed^uint32(off), castagnoli, covered)
}

// AppendPayload appends payload, the payload of the DATA frame decoded at
// off in a segment whose seed is seed (FrameSeed), stamped ts and storing
// crc, to dst, and reports whether the bytes appended still match crc.
// A payload aliasing a mapping may have changed since its frame was
// decoded: a file cut inside a page reads as zeros from the cut to the
// end of that page, without a fault. Checking the copy, not the mapping,
// is what makes the bytes returned the bytes checked. Run it under Guard
// when payload is in a mapping.
func AppendPayload(dst []byte, seed uint32, off, ts int64, crc uint32, payload []byte) ([]byte, bool) {
	n := len(dst)
	// The frame header is built in dst's spare capacity, where the payload
	// then goes: hash/crc32 makes its argument escape, so a local array
	// would cost an allocation per record.
	dst = slices.Grow(dst, max(FrameHeaderSize, len(payload)))
	h := dst[n : n+FrameHeaderSize]
	PutFrameHeader(h, TypeData, int32(FrameHeaderSize+len(payload)), ts)
	c := FrameCRC(seed, off, h[8:])
	dst = append(dst, payload...)
	return dst, crc32.Update(c, castagnoli, dst[n:]) == crc
}

// PutFrameHeader writes frame bytes 8..24 (type, flags, reserved, length
// copy, time). The writer then stores the CRC (PutFrameCRC) and commits
// with StoreLength. b starts at the frame.
func PutFrameHeader(b []byte, typ byte, length int32, ts int64) {
	_ = b[FrameHeaderSize-1]
	b[8] = typ
	b[9] = 0
	b[10], b[11] = 0, 0
	le.PutUint32(b[12:], uint32(length))
	le.PutUint64(b[16:], uint64(ts))
}

// PutFrameCRC computes and stores the CRC of the frame at b (whose bytes
// 8..24 and payload are written) and returns it.
func PutFrameCRC(b []byte, seed uint32, off int64) uint32 {
	n := FrameHeaderSize
	if b[8] == TypeData {
		n = int(le.Uint32(b[12:]))
	}
	c := FrameCRC(seed, off, b[8:n])
	le.PutUint32(b[4:], c)
	return c
}

// lengthWord returns the frame's commit word. Images are mapped at page
// boundaries or allocated by make, and frames are 8-aligned, so the address
// is aligned as sync/atomic requires.
func lengthWord(img []byte, off int64) *int32 {
	// Bounds-check by slicing, which reads nothing: `_ = img[off+3]` is a
	// plain read of a byte of the word to the race detector, racing with
	// the writer's atomic stores.
	w := img[off : off+4 : off+4]
	return (*int32)(unsafe.Pointer(unsafe.SliceData(w)))
}

// LoadLength reads the commit word with an atomic (acquire) load. A reader
// that sees a positive length through this load also sees every byte the
// writer stored before StoreLength: by the Go memory model's
// synchronized-before rule where StoreLength is sync/atomic's store, by
// x86-TSO where it is a plain MOV (see StoreLength).
func LoadLength(img []byte, off int64) int32 { return atomic.LoadInt32(lengthWord(img, off)) }

// StoreLength stores the commit word with release ordering. The writer
// calls it twice: with the negative length right after claiming (so the
// slot reads as reserved, not unwritten) and with the positive length last
// (commit). The commit needs release ordering, which LoadLength's acquire
// load pairs with: neither the compiler nor the CPU may let the header and
// payload stores before it become visible after it. The claim needs only
// to stay first in program order, so that a process that dies leaves a
// reserved slot rather than bytes behind a zero word (FORMAT.md section 5).
//
// Off amd64, and under the race detector (which must see the
// synchronisation), it is sync/atomic's store, sequentially consistent and
// so more than enough. On amd64 that store is an XCHG, a full fence that
// waits for every earlier store to reach the cache; two per Append cost
// ~12 % of single-goroutine 64-byte Append throughput here
// (BenchmarkAppend, 10.0 -> 11.3 Mrec/s, medians of 4 alternating runs).
// There it is one MOV in an assembly function instead (store_amd64.s):
// x86-TSO never makes a store visible before an earlier store, and the Go
// compiler keeps every store on its side of a call it cannot see into, so
// program order is the order other cores observe, which is all release
// needs.
func StoreLength(img []byte, off int64, length int32) {
	storeRelease32(lengthWord(img, off), length)
}

// StoreLengthFenced is StoreLength as a sequentially consistent store
// (XCHG on amd64), for a commit that must be ordered before a load that
// follows it: the writer's Reservation.Commit then checks whether Close
// cut the segment off its file meanwhile (a release store may still sit
// in the store buffer when that load runs).
func StoreLengthFenced(img []byte, off int64, length int32) {
	atomic.StoreInt32(lengthWord(img, off), length)
}

// DecodeFrame decodes the frame slot at off in the image of segment seq.
// img is the whole segment file (len(img) is the segment size). It never
// panics on any content and never allocates; a Torn frame's Err says why.
func DecodeFrame(img []byte, seq uint64, off int64) Frame {
	var f Frame
	decodeFrame(&f, img, FrameSeed(seq), off)
	return f
}

// decodeFrame is DecodeFrame with the segment's seed computed once by the
// caller (Walk, Resync) rather than per frame, decoding into *f in place:
// a walk decodes straight into the event it hands on, instead of copying
// an 80-byte Frame out of every call (the copy of a struct just stored
// field by field stalls on store forwarding, which cost more than the CRC).
func decodeFrame(f *Frame, img []byte, seed uint32, off int64) {
	decodeFrameIn(f, img, 0, int64(len(img)), seed, off)
}

// decodeFrameIn is decodeFrame on a window of a segment of size bytes: win
// holds the segment's bytes from offset base on. It reports false, having
// judged nothing, when the slot's header or the bytes its committed length
// covers are not all in the window; the caller reads them another way.
// Offsets stay segment offsets throughout (the CRC mixes them in), only the
// indexing is shifted.
func decodeFrameIn(f *Frame, win []byte, base, size int64, seed uint32, off int64) bool {
	covered, ok := frameIn(f, win, base, size, off)
	if covered == nil {
		return ok
	}
	if c := FrameCRC(seed, off, covered); c != f.CRC {
		f.badCRC(off, c)
		return true
	}
	f.commit(covered)
	return true
}

// frameIn is decodeFrameIn but for the CRC: for a slot that passes every
// other check it returns the bytes the CRC covers (f.State is not set yet;
// f.commit completes f once they match); otherwise nil, with f decoded.
func frameIn(f *Frame, win []byte, base, size int64, off int64) (covered []byte, ok bool) {
	*f = Frame{Offset: off}
	limit := RecordLimit(size)
	// off > limit-FrameHeaderSize, not off+FrameHeaderSize > limit: off
	// comes from callers and may be near MaxInt64.
	if off < HeaderSize || off%Alignment != 0 || off > limit-FrameHeaderSize {
		f.torn(off, "frame offset out of the record area")
		return nil, true
	}
	end := base + int64(len(win)) // the window's end, a segment offset
	if off < base || off > end-FrameHeaderSize {
		return nil, false
	}
	f.Length = LoadLength(win, off-base)
	h := win[off-base : off-base+FrameHeaderSize]
	// Nothing past the commit word is read unless it is positive: in a live
	// segment a writer may be storing those bytes right now, and only the
	// commit store orders them before this load.
	switch {
	case f.Length == 0:
		f.State = Unwritten
		return nil, true
	case f.Length < 0:
		f.State = Reserved
		ext := Align(-int64(f.Length))
		// A data claim that does not fit below DataLimit is never stored
		// (its writer writes END instead). The one longer claim that is
		// stored is END's own, which runs exactly to the record limit: the
		// writer claims it before writing it, like every frame. Anything
		// else is damage; trusting it would make recovery write a PAD that
		// cannot decode.
		endClaim := off+ext == limit && off <= DataLimit(size)
		if f.Length == -1<<31 || ext < FrameHeaderSize || (off+ext > DataLimit(size) && !endClaim) {
			f.torn(off, "reserved frame length %d out of bounds", f.Length)
			return nil, true
		}
		f.Extent = ext
		return nil, true
	}
	f.Type = h[8]
	f.Time = int64(le.Uint64(h[16:]))
	f.CRC = le.Uint32(h[4:])
	ext := Align(int64(f.Length))
	if int64(f.Length) < FrameHeaderSize || off+ext > limit {
		f.torn(off, "frame length %d out of bounds", f.Length)
		return nil, true
	}
	if h[9] != 0 || h[10] != 0 || h[11] != 0 {
		f.torn(off, "reserved header bytes are not zero")
		return nil, true
	}
	if c := int32(le.Uint32(h[12:])); c != f.Length {
		f.torn(off, "commit length %d does not match the length field %d", f.Length, c)
		return nil, true
	}
	covered = h[8:]
	switch f.Type {
	case TypeData:
		if off+ext > DataLimit(size) {
			f.torn(off, "data frame crosses the data limit")
			return nil, true
		}
		if off+int64(f.Length) > end {
			*f = Frame{Offset: off}
			return nil, false
		}
		covered = win[off-base+8 : off-base+int64(f.Length)]
	case TypePad:
		if off+ext > DataLimit(size) || ext != int64(f.Length) {
			f.torn(off, "pad frame length %d invalid", f.Length)
			return nil, true
		}
	case TypeEnd:
		if off+int64(f.Length) != limit || off > DataLimit(size) {
			f.torn(off, "end frame length %d does not reach the record limit", f.Length)
			return nil, true
		}
	default:
		f.torn(off, "invalid frame type 0x%02x", f.Type)
		return nil, true
	}
	return covered, true
}

// commit completes a frame whose CRC matched covered (from frameIn).
func (f *Frame) commit(covered []byte) {
	f.State = Committed
	f.Extent = Align(int64(f.Length))
	if f.Type == TypeData {
		f.Payload = covered[FrameHeaderSize-8:]
	}
}

// badCRC marks f torn for a checksum that does not match. Out of line, as
// torn.
//
//go:noinline
func (f *Frame) badCRC(off int64, computed uint32) {
	f.torn(off, "frame checksum mismatch (stored %08x, computed %08x)", f.CRC, computed)
}

// torn marks f torn at off. Out of line: the error path must not make
// decodeFrame's fast path bigger.
//
//go:noinline
func (f *Frame) torn(off int64, format string, a ...any) {
	f.State = Torn
	f.Err = corrupt(off, format, a...)
}
