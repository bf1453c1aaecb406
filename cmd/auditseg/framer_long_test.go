package main

import (
	"bytes"
	"testing"
)

// A line that spans many blocks is assembled in carry, and looked at again
// each time carry grows. Searching carry from its start every time made a
// line cost the square of its length: a 100 MB line took 6 s to write, 25
// s for 200 MB, during which a SIGTERM waited for the blocks in hand. The
// splitter must be asked to search each byte about once.
func TestFramerLongLineSearchedOnce(t *testing.T) {
	const size = 16 << 20
	for _, fl := range []writeFlags{{delim: "newline"}, {delim: "nul"}} {
		d := map[string]byte{"newline": '\n', "nul": 0}[fl.delim]
		const max = 2 * size
		split, err := newSplitter(fl, max, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		var searched int64
		counted := func(buf []byte, from int, eof bool) ([]byte, int, bool, error) {
			searched += int64(len(buf) - from)
			return split(buf, from, eof)
		}
		fr := newFramer(counted, max, 1<<30, recordNeed(fl, max))
		block := bytes.Repeat([]byte{'a'}, blockSize)
		var got []int
		emit := func(rec []byte, n int) error { got = append(got, len(rec)); return nil }
		for off := 0; off < size; off += blockSize {
			if err := fr.feed(block, false, emit); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.feed([]byte{d, 'b', d}, true, emit); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != size || got[1] != 1 {
			t.Fatalf("%s: records of %v bytes, want [%d 1]", fl.delim, got, size)
		}
		if searched > 2*size {
			t.Errorf("%s: a line of %d bytes had %d bytes searched for its end, want at most %d", fl.delim, size, searched, 2*size)
		}
	}
}
