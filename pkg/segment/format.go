// Package segment is the auditseg on-disk format: segment headers, frames,
// footers, file names, and the one decoder that the writer's recovery, the
// reader and verify all share. docs/FORMAT.md is the specification; this
// package is its only implementation. Byte-level parsing of segment files
// happens here and nowhere else. So does recovery's judgment of a dead
// writer's unsealed segment (Refusal, RecoveryRefusal): whether
// writer.Open leaves it as it is, which decides what verify calls crash
// residue and the reader crash leftovers.
//
// Summary (all integers little-endian; see docs/FORMAT.md for the rules):
//
//	segment file (Size bytes, fixed, fallocated, Size % 8 == 0)
//	+----------------+--------------------------------------+-----------------+
//	| header 64 B    | record area: frames, 8-byte aligned  | footer 128 B    |
//	+----------------+--------------------------------------+-----------------+
//	0                64                         RecordLimit = Size-128      Size
//
//	frame header (24 B), then payload, padded with zeros to 8 bytes
//	 0  int32  length     commit word: 0 unwritten, <0 reserved, >0 committed
//	 4  uint32 crc        CRC32C of bytes 8..length (DATA) or 8..24, continued
//	                      (crc32.Update) from CRC32C(seq) XOR offset (FrameCRC)
//	 8  uint8  type       1 DATA, 2 PAD, 0x19 END (0 is invalid)
//	 9  uint8  flags      0
//	10  uint16 reserved   0
//	12  int32  length     copy of the committed length, covered by the CRC
//	16  int64  time       unix nanoseconds
//
// Every constant in this file is part of the wire format and must never
// change; a new layout gets a new Version.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"
	"unsafe"
)

// Wire constants. Changing any of them breaks every existing log.
const (
	// Magic opens every segment file.
	Magic = "AUDITSEG"
	// FooterMagic opens the footer of a sealed segment.
	FooterMagic = "AUDSEAL1"
	// Version is the format version written in the segment header.
	Version = 1

	HeaderSize      = 64  // segment header, at offset 0
	FrameHeaderSize = 24  // frame header; also the room kept for the END frame
	Alignment       = 8   // every frame starts at a multiple of this
	FooterSize      = 128 // footer, in the last FooterSize bytes of the file
	DigestSize      = 32  // BLAKE3-256

	TypeData byte = 0x01 // a record
	TypePad  byte = 0x02 // an aborted or recovered reservation; skipped
	TypeEnd  byte = 0x19 // END-OF-MEDIA: no more frames in this segment

	// FlagRecovered in a footer means the segment was sealed by recovery
	// after its writer died, not by the writer that filled it.
	FlagRecovered uint32 = 1
)

// Limits on the segment size. They are not wire constants: a reader accepts
// any size in range that the header states and the file matches.
const (
	MinSegmentSize     = 64 << 10
	MaxSegmentSize     = 1 << 30 // frame lengths are int32
	DefaultSegmentSize = 64 << 20
	// MaxRecordFraction: by default the largest record is Size/MaxRecordFraction
	// minus the frame header, as Aeron does, so one record never wastes more
	// than an eighth of a segment at a rotation.
	MaxRecordFraction = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors. Errors returned by this package wrap one of them with the
// file and offset concerned; test with errors.Is.
var (
	ErrCorrupt  = errors.New("corrupt segment")
	ErrNotFound = errors.New("segment not found")
	ErrLocked   = errors.New("log directory is locked by another writer")
	// ErrLockLost: the writer's lock no longer holds the directory at
	// its path (Lock.Check).
	ErrLockLost = errors.New("writer lost its lock on the log directory")
)

// CorruptError names the file and offset of damage found while decoding.
type CorruptError struct {
	Path   string // may be empty when decoding a bare buffer
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	p := e.Path
	if p == "" {
		p = "segment"
	}
	return fmt.Sprintf("%s: offset %d: %s", p, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// LostEnd is the reason verify and the reader give for a sealed segment
// whose frames stop, in zeros, at off: before the END frame its footer
// places at end (committed frames lost), or at it (only END lost).
func LostEnd(off, end int64) string {
	if off < end {
		return fmt.Sprintf("%d bytes of committed frames up to the END frame at %d (per the footer) read as zeros", end+FrameHeaderSize-off, end)
	}
	return fmt.Sprintf("sealed segment has no END frame at the footer's end offset %d", end)
}

// DamagedEndClaim is the reason verify and the reader give for an END
// claim at off with a non-zero byte at garbage behind its header
// (EndClaim): what recovery leaves unsealed is not a writer's leftover.
func DamagedEndClaim(off, garbage int64) string {
	return fmt.Sprintf("END frame claimed at %d (a reservation up to the record limit) and never written, with a non-zero byte at offset %d behind its header, where nothing is ever written: the claim word is damage that may hide committed frames, and recovery leaves the segment unsealed", off, garbage)
}

func corrupt(off int64, format string, a ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// WithPath returns err with the file name filled in when it is a
// *CorruptError without one; other errors are returned unchanged.
func WithPath(err error, path string) error {
	var ce *CorruptError
	if errors.As(err, &ce) && ce.Path == "" {
		c := *ce
		c.Path = path
		return &c
	}
	return err
}

// RecordLimit is the end of the record area: the END frame ends exactly here.
func RecordLimit(size int64) int64 { return size - FooterSize }

// DataLimit is the last offset at which a DATA or PAD frame may end. The
// FrameHeaderSize bytes between it and RecordLimit are kept so that the
// writer whose reservation crosses DataLimit always has room for the END
// frame, whatever its offset.
func DataLimit(size int64) int64 { return RecordLimit(size) - FrameHeaderSize }

// MaxPayload is the largest payload that fits in an empty segment of size.
func MaxPayload(size int64) int64 { return DataLimit(size) - HeaderSize - FrameHeaderSize }

// DefaultMaxRecord is the default largest payload for a segment size.
func DefaultMaxRecord(size int64) int64 {
	return size/MaxRecordFraction - FrameHeaderSize
}

// Align rounds n up to the frame alignment.
func Align(n int64) int64 { return (n + Alignment - 1) &^ (Alignment - 1) }

// FrameSize is the aligned extent of a frame holding a payload of n bytes.
func FrameSize(n int) int64 { return Align(int64(FrameHeaderSize + n)) }

// ValidSize reports whether size can be a segment size.
func ValidSize(size int64) error {
	switch {
	case size < MinSegmentSize || size > MaxSegmentSize:
		return fmt.Errorf("segment size %d out of range [%d, %d]", size, MinSegmentSize, MaxSegmentSize)
	case size%Alignment != 0:
		return fmt.Errorf("segment size %d is not a multiple of %d", size, Alignment)
	}
	return nil
}

// Header is the fixed header at offset 0 of every segment.
//
//	 0  [8]  magic "AUDITSEG"
//	 8  u16  version (1)
//	10  u16  frame header size (24)
//	12  u16  alignment (8)
//	14  u16  footer size (128)
//	16  u64  sequence number
//	24  u64  segment size in bytes (the file size)
//	32  i64  creation time, unix nanoseconds
//	40  [20] reserved, zero
//	60  u32  CRC32C of bytes 0..60
type Header struct {
	Seq     uint64
	Size    int64
	Created int64 // unix nanoseconds
}

// Encode writes h into b[:HeaderSize].
func (h Header) Encode(b []byte) {
	b = b[:HeaderSize]
	clear(b)
	copy(b, Magic)
	le.PutUint16(b[8:], Version)
	le.PutUint16(b[10:], FrameHeaderSize)
	le.PutUint16(b[12:], Alignment)
	le.PutUint16(b[14:], FooterSize)
	le.PutUint64(b[16:], h.Seq)
	le.PutUint64(b[24:], uint64(h.Size))
	le.PutUint64(b[32:], uint64(h.Created))
	le.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
}

// DecodeHeader parses and checks a segment header. It does not compare the
// size with the file; callers that know the file size must.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corrupt(0, "file too short for a segment header (%d bytes)", len(b))
	}
	b = b[:HeaderSize]
	if string(b[:8]) != Magic {
		return Header{}, corrupt(0, "bad magic %q", b[:8])
	}
	if got, want := le.Uint32(b[60:]), crc32.Checksum(b[:60], castagnoli); got != want {
		return Header{}, corrupt(60, "header checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	if v := le.Uint16(b[8:]); v != Version {
		return Header{}, corrupt(8, "unsupported format version %d (this build reads %d)", v, Version)
	}
	if le.Uint16(b[10:]) != FrameHeaderSize || le.Uint16(b[12:]) != Alignment || le.Uint16(b[14:]) != FooterSize {
		return Header{}, corrupt(10, "layout constants do not match version %d", Version)
	}
	// A version 1 writer leaves them zero; anything else was written by a
	// layout this build does not know, so nothing in the file can be trusted.
	if !isZero(b[40:60]) {
		return Header{}, corrupt(40, "reserved header bytes are not zero")
	}
	h := Header{Seq: le.Uint64(b[16:]), Size: int64(le.Uint64(b[24:])), Created: int64(le.Uint64(b[32:]))}
	if err := ValidSize(h.Size); err != nil {
		return Header{}, corrupt(24, "%v", err)
	}
	return h, nil
}

// Footer is written into the last FooterSize bytes when a segment is sealed.
// A segment whose footer decodes is sealed and immutable.
//
//	  0  [8]  magic "AUDSEAL1"
//	  8  u64  sequence number (same as the header)
//	 16  u64  DATA frames in the segment
//	 24  u64  end offset: where the END frame starts
//	 32  i64  smallest DATA timestamp (0 when no records)
//	 40  i64  largest DATA timestamp (0 when no records)
//	 48  i64  sealing time, unix nanoseconds
//	 56  u32  flags (FlagRecovered)
//	 60  [32] digest of the previous segment (zeros for the first)
//	 92  [32] digest: BLAKE3-256(previous digest | file bytes 0..end+24)
//	124  u32  CRC32C of bytes 0..124
type Footer struct {
	Seq        uint64
	Records    uint64
	EndOffset  int64
	MinTime    int64
	MaxTime    int64
	SealedAt   int64
	Flags      uint32
	PrevDigest [DigestSize]byte
	Digest     [DigestSize]byte
}

// Encode writes f into b[:FooterSize].
func (f Footer) Encode(b []byte) {
	b = b[:FooterSize]
	clear(b)
	copy(b, FooterMagic)
	le.PutUint64(b[8:], f.Seq)
	le.PutUint64(b[16:], f.Records)
	le.PutUint64(b[24:], uint64(f.EndOffset))
	le.PutUint64(b[32:], uint64(f.MinTime))
	le.PutUint64(b[40:], uint64(f.MaxTime))
	le.PutUint64(b[48:], uint64(f.SealedAt))
	le.PutUint32(b[56:], f.Flags)
	copy(b[60:], f.PrevDigest[:])
	copy(b[92:], f.Digest[:])
	le.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli))
}

// ErrNoFooter is returned by DecodeFooter for a footer whose magic is
// not there, its first 8 bytes zero: the segment was never sealed (it is
// active, or its writer died), or its seal did not finish. Every sealer
// makes the magic visible last (StoreFooter through a mapping,
// WriteFooter with pwrite), so one killed in the middle, or a reader
// looking meanwhile, finds some of the other bytes at most, and the
// segment reads as not sealed rather than as damaged.
var ErrNoFooter = errors.New("segment is not sealed")

// ErrSealUnfinished is the ErrNoFooter DecodeFooter returns when bytes
// of the footer other than its magic are stored: a seal that did not
// finish. errors.Is(err, ErrNoFooter) holds for it.
var ErrSealUnfinished = fmt.Errorf("%w: its footer was stored without the magic (the seal did not finish)", ErrNoFooter)

// StoreFooter writes f into dst, the footer bytes of a mapped segment
// (Size-FooterSize to Size), in an order that leaves every prefix of the
// store decoding as f or as ErrNoFooter: bytes 8 to 128 first, then the
// magic in one aligned 8-byte atomic store. A process killed at any
// instruction in between leaves the magic zero (the copy may store its
// chunks in any order), and the store is sequentially consistent, so no
// earlier byte becomes visible after the magic, to another core or in
// the page cache a crash leaves behind. dst must be 8-byte aligned, as
// the end of a mapping of a segment is (Size % 8 == 0).
func StoreFooter(dst []byte, f Footer) {
	var b [FooterSize]byte
	f.Encode(b[:])
	dst = dst[:FooterSize:FooterSize]
	copy(dst[len(FooterMagic):], b[len(FooterMagic):])
	p := unsafe.Pointer(unsafe.SliceData(dst))
	if uintptr(p)%8 != 0 {
		// A caller's buffer at an odd offset, never a mapping: no one
		// reads it while it is stored.
		copy(dst, b[:len(FooterMagic)])
		return
	}
	atomic.StoreUint64((*uint64)(p), le.Uint64(b[:len(FooterMagic)]))
}

// WriteFooter writes f at off, the footer of the segment file at path
// (Size-FooterSize), with two writes: bytes 8 to 128, then the magic.
// One write of all 128 bytes is never left half done by a kill, but a
// reader racing it (another process reading or mapping the page cache)
// can see the magic before the bytes after it, a footer that reads as
// damaged; after the first write has returned, the second cannot make
// the magic visible without them. (A reader racing the second may still
// see part of the magic, a bad magic: pwrite, unlike StoreFooter's
// atomic store, promises no 8 bytes at once. Readers take a footer that
// does not decode, while a writer is alive, for one being written.) It
// does not flush: callers fsync after it. An error names the file and
// the offset of the write that failed.
func WriteFooter(w io.WriterAt, path string, off int64, f Footer) error {
	var b [FooterSize]byte
	f.Encode(b[:])
	n := int64(len(FooterMagic))
	if _, err := w.WriteAt(b[n:], off+n); err != nil {
		return FileError(path, fmt.Sprintf("write footer at offset %d", off+n), err)
	}
	if _, err := w.WriteAt(b[:n], off); err != nil {
		return FileError(path, fmt.Sprintf("write footer magic at offset %d", off), err)
	}
	return nil
}

// DecodeFooter parses the footer of a segment image (the whole file).
// The offsets in errors are file offsets.
func DecodeFooter(img []byte, h Header) (Footer, error) {
	if err := ValidSize(h.Size); err != nil {
		// Only a Header that did not come from DecodeHeader gets here.
		return Footer{}, corrupt(24, "%v", err)
	}
	if int64(len(img)) != h.Size {
		return Footer{}, corrupt(int64(len(img)), "file is %d bytes, header says %d", len(img), h.Size)
	}
	return decodeFooterAt(img[h.Size-FooterSize:], h)
}

// decodeFooterAt parses footer bytes b of the segment whose header is h
// (the last FooterSize bytes of its file, or a copy of them).
func decodeFooterAt(b []byte, h Header) (Footer, error) {
	at := h.Size - FooterSize
	b = b[:FooterSize]
	magic := loadMagic(b)
	if magic == 0 {
		// The magic is stored last (see ErrNoFooter).
		if isZero(b[len(FooterMagic):]) {
			return Footer{}, ErrNoFooter
		}
		return Footer{}, ErrSealUnfinished
	}
	if magic != le.Uint64([]byte(FooterMagic)) {
		var m [len(FooterMagic)]byte
		le.PutUint64(m[:], magic)
		return Footer{}, corrupt(at, "bad footer magic %q", m[:])
	}
	if got, want := le.Uint32(b[124:]), crc32.Checksum(b[:124], castagnoli); got != want {
		return Footer{}, corrupt(at+124, "footer checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	f := Footer{
		Seq:       le.Uint64(b[8:]),
		Records:   le.Uint64(b[16:]),
		EndOffset: int64(le.Uint64(b[24:])),
		MinTime:   int64(le.Uint64(b[32:])),
		MaxTime:   int64(le.Uint64(b[40:])),
		SealedAt:  int64(le.Uint64(b[48:])),
		Flags:     le.Uint32(b[56:]),
	}
	copy(f.PrevDigest[:], b[60:])
	copy(f.Digest[:], b[92:])
	if f.Seq != h.Seq {
		return Footer{}, corrupt(at+8, "footer sequence %d does not match header sequence %d", f.Seq, h.Seq)
	}
	if f.EndOffset < HeaderSize || f.EndOffset > DataLimit(h.Size) || f.EndOffset%Alignment != 0 {
		return Footer{}, corrupt(at+24, "footer end offset %d out of range", f.EndOffset)
	}
	return f, nil
}

// loadMagic loads the first 8 bytes of b, a footer, as StoreFooter
// stores them: in one atomic load where b is aligned (a mapping), so that
// on a CPU that may reorder loads (arm64) none of the bytes read after it
// is older than the magic; on amd64 it is the same MOV as a plain load.
func loadMagic(b []byte) uint64 {
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%8 != 0 {
		// A copy, or the end of a file whose size is no multiple of 8:
		// no sealer stores into either.
		return le.Uint64(b)
	}
	return atomic.LoadUint64((*uint64)(p))
}

// decodeWholeFooter is decodeFooterAt for a footer written in one piece
// from a sealed segment, never stored in place by a sealer: an archive's
// (compressed after the seal) and its summary's copy. Only a sealer's
// store can stop short of the magic, so one of these without it is
// damage, a bad magic like any other, not a seal that did not finish.
func decodeWholeFooter(b []byte, h Header) (Footer, error) {
	f, err := decodeFooterAt(b, h)
	if errors.Is(err, ErrSealUnfinished) {
		return f, corrupt(h.Size-FooterSize, "bad footer magic %q", b[:len(FooterMagic)])
	}
	return f, err
}

var le = binary.LittleEndian

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if le.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
