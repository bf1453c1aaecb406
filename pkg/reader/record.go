package reader

import (
	"errors"
	"fmt"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Position names a record; see segment.Position.
type Position = segment.Position

// Record is one record of the log.
type Record struct {
	Position Position
	Time     time.Time // the writer's timestamp (nanoseconds)
	// Payload aliases the segment's mapping: it is valid only until the
	// next call to Next, Wait or Close on the Reader that returned it, and
	// must not be written to. Use Clone to keep a record longer; touching
	// Payload after that may crash the program (the memory is unmapped),
	// and Clone or AppendPayload of the Record then returns ErrReleased
	// once the reader has released its segment.
	//
	// Its bytes passed the frame's CRC when the reader decoded them, but
	// the mapping shows the file as it is now: a file truncated since
	// faults (SIGBUS) where its pages are gone, and reads as zeros from the
	// cut to the end of the page it falls in. Copy it with AppendPayload
	// or Clone, which check the copy, before trusting it.
	Payload []byte

	// What AppendPayload checks a copy against: the segment (its file,
	// its CRC seed, and whether its mapping was released) and the CRC the
	// frame stores. seg is nil in a Record the caller built, and in a
	// clone, whose Payload is the caller's to change: those are copied
	// unchecked.
	seg *seg
	crc uint32
}

// AppendPayload appends rec's payload to dst and returns the result,
// having checked that the bytes appended are those the reader checked:
// the copy must match the CRC the frame passed (one more CRC32C pass
// over the payload, as decoding the frame took). If the file changed since
// the reader decoded the record, it returns dst unchanged and a
// *segment.ChangedError naming the file: if the copy faulted (the
// file is shorter than the payload's page), at the offset that had no
// data; if the copy differs (cut inside the payload's page, or written
// to), at the record's offset, wrapping segment.ErrChangedAfterCheck.
// The record must be as Next returned it: its Position, Time and
// Payload are what is checked. Once the reader has released the record's
// segment (Next moved to another segment, or Close), it returns dst
// unchanged and an error wrapping ErrReleased.
func (rec Record) AppendPayload(dst []byte) ([]byte, error) {
	s := rec.seg
	if s == nil {
		return append(dst, rec.Payload...), nil
	}
	if s.released.Load() {
		return dst, rec.released()
	}
	out, err := segment.AppendChecked(dst, s.path, "read", s.seed, rec.Position.Offset, rec.Time.UnixNano(), rec.crc, rec.Payload)
	if err != nil && s.released.Load() {
		// Released while it was copied, from another goroutine: what
		// failed was the copy of unmapped memory, not the file.
		return dst, rec.released()
	}
	return out, err
}

// ErrReleased: a Record's Payload was used after the reader released its
// segment's mapping, by moving to the next segment or by Close. Copy a
// record (Clone, AppendPayload) before that.
var ErrReleased = errors.New("the record's segment was released by its reader (it moved to another segment, or was closed): copy a record before that")

func (rec Record) released() error {
	return fmt.Errorf("%s: record at %s: %w", rec.seg.path, rec.Position, ErrReleased)
}

// changedAfterCheck is the error for the record at off in the file at
// path whose copy no longer matches the CRC it passed when it was
// decoded: AppendPayload's, and the bulk replay's for a payload it took
// from the mapping.
func changedAfterCheck(path string, off int64) error {
	return &segment.ChangedError{Path: path, While: "read", Off: off, Err: segment.ErrChangedAfterCheck}
}

// Clone returns a copy of rec whose Payload is owned by the caller,
// checked as AppendPayload checks it: an error, not the record, if its
// file changed since the reader decoded it. The copy is the caller's to
// change, like a Record it built: copying or cloning it again checks
// nothing.
func (rec Record) Clone() (Record, error) {
	p, err := rec.AppendPayload(nil)
	if err != nil {
		return Record{}, err
	}
	rec.Payload, rec.seg, rec.crc = p, nil, 0
	return rec, nil
}
