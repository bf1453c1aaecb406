package writer

import (
	"fmt"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TooLargeError is the error for a record over the size limit, wrapping
// ErrTooLarge. The writer returns it, and auditseg write reports a
// record its input framing finds too large with it too, so the limit and
// how to raise it read the same whichever of them catches the record.
type TooLargeError struct {
	Dir         string // the log; "" leaves it out
	Size        int64  // the record's size; -1 when only known to be over the limit
	Limit       int64  // the largest record accepted (Options.MaxRecordSize)
	SegmentSize int64
}

func (e *TooLargeError) Error() string {
	msg := fmt.Sprintf("%v: %d bytes, the limit is %d bytes (%s)", ErrTooLarge, e.Size, e.Limit, e.raise())
	if e.Size < 0 {
		msg = fmt.Sprintf("%v: over the limit of %d bytes (%s)", ErrTooLarge, e.Limit, e.raise())
	}
	if e.Dir != "" {
		msg = e.Dir + ": " + msg
	}
	return msg
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// raise says how to raise the limit far enough, or that nothing can:
// the flag for the command, the option for the library.
func (e *TooLargeError) raise() string {
	top, most := segment.MaxPayload(e.SegmentSize), segment.MaxPayload(segment.MaxSegmentSize)
	switch {
	case e.Size > most:
		return fmt.Sprintf("no segment holds a record of more than %d bytes", most)
	case e.Limit < top:
		return fmt.Sprintf("raise it with --max-record / Options.MaxRecordSize, up to %d for %d-byte segments, further with a larger --segment-size / Options.SegmentSize", top, e.SegmentSize)
	default:
		return fmt.Sprintf("the most a %d-byte segment holds: raise --segment-size / Options.SegmentSize, and --max-record with it", e.SegmentSize)
	}
}
