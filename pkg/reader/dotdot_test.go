package reader_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A log named through a symbolic link and "..", with another log in the
// directory the kernel resolves the name to: the reader listed that one
// and opened the segments of its list in the directory the name cleans
// to, where writer.Open appends. Log A (the cleaned directory, two
// segments) was read as far as log B (one segment) has names: A's second
// segment was left out, without a word. One segment file named so was
// B's. Both now read A.
func TestReadNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	long := bytes.Repeat([]byte("x"), 1000)
	a := writeLogWith(t, cleaned, 100, true, func(i int) []byte { return fmt.Appendf(nil, "log A record %d %s", i, long) })
	writeLogWith(t, resolved, 3, true, func(i int) []byte { return fmt.Appendf(nil, "log B record %d", i) })
	if a[len(a)-1].pos.Seq != 2 {
		t.Fatalf("log A ends at %v; want two segments", a[len(a)-1].pos)
	}
	got, dmg := readAll(t, name, reader.Options{})
	if len(dmg) > 0 {
		t.Fatalf("damage %v", dmg)
	}
	sameRecs(t, got, a)

	var first []rec
	for _, x := range a {
		if x.pos.Seq == 1 {
			first = append(first, x)
		}
	}
	got, dmg = readAll(t, name+"/"+segment.FileName(1), reader.Options{})
	if len(dmg) > 0 {
		t.Fatalf("segment file: damage %v", dmg)
	}
	sameRecs(t, got, first)
}
