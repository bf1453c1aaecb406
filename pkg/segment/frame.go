package segment

import (
	"crypto/sha256"
	"hash/crc32"
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
	Type    byte
	Time    int64 // unix nanoseconds
	CRC     uint32
	State   FrameState
	Extent  int64  // aligned size; 0 for Unwritten, and for Torn when untrusted
	Payload []byte // DATA payload, aliasing the image; nil otherwise
	Err     error  // for Torn: why (a *CorruptError)
}

// FrameCRC is the checksum stored in a frame: CRC32C (Castagnoli) over the
// segment sequence (8 bytes), the frame offset (8 bytes), header bytes 0..16
// as committed (positive length), then the payload (DATA only). Mixing in the
// sequence and offset means bytes copied from another segment or another
// place never validate.
func FrameCRC(seq uint64, off int64, length int32, typ byte, ts int64, payload []byte) uint32 {
	var b [32]byte
	le.PutUint64(b[0:], seq)
	le.PutUint64(b[8:], uint64(off))
	le.PutUint32(b[16:], uint32(length))
	b[20] = typ
	le.PutUint64(b[24:], uint64(ts))
	c := crc32.Update(0, castagnoli, b[:])
	if len(payload) > 0 {
		c = crc32.Update(c, castagnoli, payload)
	}
	return c
}

// PutFrameHeader writes everything in a frame header except the length
// word, which the writer stores atomically (see LoadLength and
// StoreLength). b starts at the frame.
func PutFrameHeader(b []byte, typ byte, ts int64, crc uint32) {
	_ = b[FrameHeaderSize-1]
	b[4] = typ
	b[5] = 0
	b[6], b[7] = 0, 0
	le.PutUint64(b[8:], uint64(ts))
	le.PutUint32(b[16:], crc)
	le.PutUint32(b[20:], 0)
}

// lengthWord returns the frame's commit word. Images are mapped at page
// boundaries or allocated by make, and frames are 8-aligned, so the address
// is aligned as sync/atomic requires.
func lengthWord(img []byte, off int64) *int32 {
	_ = img[off+3]
	return (*int32)(unsafe.Pointer(&img[off]))
}

// LoadLength reads the commit word with an atomic (acquire) load. A reader
// that sees a positive length through this load also sees every byte the
// writer stored before StoreLength, by the Go memory model's
// synchronized-before rule for sync/atomic.
func LoadLength(img []byte, off int64) int32 { return atomic.LoadInt32(lengthWord(img, off)) }

// StoreLength stores the commit word atomically. The writer calls it twice:
// with the negative length right after claiming (so the slot reads as
// reserved, not unwritten) and with the positive length last (commit). Go's
// atomic stores are sequentially consistent: the compiler and CPU never move
// the header and payload stores that precede the commit store after it, nor
// the claim store after the payload stores that follow it (on amd64 the
// store is an XCHG, a full fence).
func StoreLength(img []byte, off int64, length int32) {
	atomic.StoreInt32(lengthWord(img, off), length)
}

// DecodeFrame decodes the frame slot at off in the image of segment seq.
// img is the whole segment file (len(img) is the segment size). It never
// panics on any content and never allocates; a Torn frame's Err says why.
func DecodeFrame(img []byte, seq uint64, off int64) Frame {
	size := int64(len(img))
	limit := RecordLimit(size)
	f := Frame{Offset: off}
	// off > limit-FrameHeaderSize, not off+FrameHeaderSize > limit: off
	// comes from callers and may be near MaxInt64.
	if off < HeaderSize || off%Alignment != 0 || off > limit-FrameHeaderSize {
		f.State = Torn
		f.Err = corrupt(off, "frame offset out of the record area")
		return f
	}
	f.Length = LoadLength(img, off)
	h := img[off : off+FrameHeaderSize]
	f.Type = h[4]
	switch {
	case f.Length == 0:
		f.State = Unwritten
		return f
	case f.Length < 0:
		f.State = Reserved
		ext := Align(-int64(f.Length))
		if f.Length == -1<<31 || ext < FrameHeaderSize || off+ext > limit {
			f.State = Torn
			f.Err = corrupt(off, "reserved frame length %d out of bounds", f.Length)
			return f
		}
		f.Extent = ext
		return f
	}
	f.Time = int64(le.Uint64(h[8:]))
	f.CRC = le.Uint32(h[16:])
	ext := Align(int64(f.Length))
	tornf := func(format string, a ...any) Frame {
		f.State = Torn
		f.Err = corrupt(off, format, a...)
		return f
	}
	if int64(f.Length) < FrameHeaderSize || off+ext > limit {
		return tornf("frame length %d out of bounds", f.Length)
	}
	if h[5] != 0 || h[6] != 0 || h[7] != 0 || le.Uint32(h[20:]) != 0 {
		return tornf("reserved header bytes are not zero")
	}
	var payload []byte
	switch f.Type {
	case TypeData:
		if off+ext > DataLimit(size) {
			return tornf("data frame crosses the data limit")
		}
		payload = img[off+FrameHeaderSize : off+int64(f.Length)]
	case TypePad:
		if off+ext > DataLimit(size) || ext != int64(f.Length) {
			return tornf("pad frame length %d invalid", f.Length)
		}
	case TypeEnd:
		if off+int64(f.Length) != limit || off > DataLimit(size) {
			return tornf("end frame length %d does not reach the record limit", f.Length)
		}
	default:
		return tornf("invalid frame type 0x%02x", f.Type)
	}
	if c := FrameCRC(seq, off, f.Length, f.Type, f.Time, payload); c != f.CRC {
		return tornf("frame checksum mismatch (stored %08x, computed %08x)", f.CRC, c)
	}
	f.State = Committed
	f.Extent = ext
	f.Payload = payload
	return f
}

// Digest computes the sealing digest of a segment whose END frame starts at
// end: SHA-256 over the previous segment's digest, then file bytes
// [0, end+FrameHeaderSize): the header, every frame, and the END frame's
// header. SHA-256 is hardware-accelerated (SHA-NI) on the machines we run
// on and needs no dependency.
func Digest(prev [DigestSize]byte, img []byte, end int64) [DigestSize]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(img[:end+FrameHeaderSize])
	var d [DigestSize]byte
	h.Sum(d[:0])
	return d
}
