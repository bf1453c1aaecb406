package segment

import (
	"fmt"
	"strconv"
	"strings"
)

// Position names a record: the sequence number of its segment and the file
// offset of its frame. Positions order records across the whole log. The
// text form is "SEQ:OFFSET" in decimal, e.g. "42:4096"; it is what
// `auditseg tail --from` and cursor files take.
type Position struct {
	Seq    uint64
	Offset int64
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Seq, p.Offset) }

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Seq < q.Seq:
		return -1
	case p.Seq > q.Seq:
		return 1
	case p.Offset < q.Offset:
		return -1
	case p.Offset > q.Offset:
		return 1
	}
	return 0
}

// ParsePosition parses the text form of a Position, as String writes it:
// two decimal numbers, the offset not negative. Surrounding white space
// (a cursor file's newline) is ignored, and leading zeros are accepted.
func ParsePosition(s string) (Position, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Position{}, fmt.Errorf("position %q: want SEQ:OFFSET", s)
	}
	seq, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: the segment sequence %q is not a number", s, a)
	}
	off, err := strconv.ParseInt(b, 10, 64)
	if err != nil || off < 0 {
		return Position{}, fmt.Errorf("position %q: bad offset", s)
	}
	return Position{Seq: seq, Offset: off}, nil
}
