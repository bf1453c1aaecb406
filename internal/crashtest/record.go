package crashtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Records written by the crash child carry their own identity and checksum,
// so the parent can check every record it reads back without keeping the
// payloads: who wrote it (run, goroutine), its number in that goroutine's
// sequence, and a CRC32C of the whole payload.
//
//	 0  [2] "CT"
//	 2  u16 body length
//	 4  u32 run
//	 8  u32 goroutine
//	12  u64 sequence number within (run, goroutine), from 0
//	20  u32 CRC32C of bytes 0..20 and the body
//	24  body: bytes derived from the identity
const recHeader = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// RecordID names a record of the crash child.
type RecordID struct {
	Run uint32
	G   uint32
	I   uint64
}

func (id RecordID) String() string {
	return fmt.Sprintf("run %d goroutine %d record %d", id.Run, id.G, id.I)
}

func mix(id RecordID) uint64 {
	h := uint64(id.Run)<<40 ^ uint64(id.G)<<32 ^ id.I
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

// BodyLen is the body length of a record: mostly short, sometimes a few
// KiB, so that rotations land at varied offsets.
func BodyLen(id RecordID) int {
	h := mix(id)
	if h%64 == 0 {
		return 1000 + int(h>>8)%3000
	}
	return int(h>>8) % 200
}

// AppendRecord appends the payload of record id to dst.
func AppendRecord(dst []byte, id RecordID) []byte {
	n := BodyLen(id)
	start := len(dst)
	dst = append(dst, make([]byte, recHeader+n)...)
	PutRecord(dst[start:], id)
	return dst
}

// RecordLen is the payload length of record id.
func RecordLen(id RecordID) int { return recHeader + BodyLen(id) }

// PutRecord writes record id into b, which is RecordLen(id) bytes long (a
// reservation's space, for instance).
func PutRecord(b []byte, id RecordID) {
	n := len(b) - recHeader
	b[0], b[1] = 'C', 'T'
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], id.Run)
	binary.LittleEndian.PutUint32(b[8:], id.G)
	binary.LittleEndian.PutUint64(b[12:], id.I)
	h := mix(id)
	for k := range n {
		b[recHeader+k] = byte(h >> (8 * (k & 7)))
		if k&7 == 7 {
			h = h*6364136223846793005 + 1442695040888963407
		}
	}
	c := crc32.Update(0, castagnoli, b[:20])
	c = crc32.Update(c, castagnoli, b[recHeader:])
	binary.LittleEndian.PutUint32(b[20:], c)
}

// ParseRecord checks a payload read back and returns its identity.
func ParseRecord(p []byte) (RecordID, error) {
	if len(p) < recHeader || p[0] != 'C' || p[1] != 'T' {
		return RecordID{}, errors.New("not a crash-test record")
	}
	n := int(binary.LittleEndian.Uint16(p[2:]))
	id := RecordID{
		Run: binary.LittleEndian.Uint32(p[4:]),
		G:   binary.LittleEndian.Uint32(p[8:]),
		I:   binary.LittleEndian.Uint64(p[12:]),
	}
	if len(p) != recHeader+n || n != BodyLen(id) {
		return id, fmt.Errorf("%v: payload is %d bytes, want %d", id, len(p), RecordLen(id))
	}
	c := crc32.Update(0, castagnoli, p[:20])
	c = crc32.Update(c, castagnoli, p[recHeader:])
	if c != binary.LittleEndian.Uint32(p[20:]) {
		return id, fmt.Errorf("%v: payload checksum mismatch", id)
	}
	return id, nil
}

// Messages from the crash child to its parent, on its stdout (a pipe).
// Each is one fixed-size write, smaller than PIPE_BUF, so it arrives whole
// or not at all even when the child is killed in the middle of writing.
const (
	MsgAck   byte = 'A' // an Append (or Commit) returned: the record is acknowledged
	MsgReady byte = 'R' // writer.Open returned
	MsgKill  byte = 'K' // an injected kill point was reached; SIGKILL follows
	MsgDone  byte = 'D' // the child appended everything and closed the writer
	MsgSize       = 32
)

// Msg is one message of the child.
type Msg struct {
	Kind byte
	G    uint32
	I    uint64
	Pos  segment.Position
}

// Encode returns the wire form of m.
func (m Msg) Encode() [MsgSize]byte {
	var b [MsgSize]byte
	b[0] = m.Kind
	binary.LittleEndian.PutUint32(b[4:], m.G)
	binary.LittleEndian.PutUint64(b[8:], m.I)
	binary.LittleEndian.PutUint64(b[16:], m.Pos.Seq)
	binary.LittleEndian.PutUint64(b[24:], uint64(m.Pos.Offset))
	return b
}

// ReadMsg reads one message; io.EOF when the child is gone.
func ReadMsg(r io.Reader) (Msg, error) {
	var b [MsgSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Msg{}, fmt.Errorf("truncated message from the child: %w", err)
		}
		return Msg{}, err
	}
	return Msg{
		Kind: b[0],
		G:    binary.LittleEndian.Uint32(b[4:]),
		I:    binary.LittleEndian.Uint64(b[8:]),
		Pos:  segment.Position{Seq: binary.LittleEndian.Uint64(b[16:]), Offset: int64(binary.LittleEndian.Uint64(b[24:]))},
	}, nil
}
