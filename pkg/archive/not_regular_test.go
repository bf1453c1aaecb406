package archive_test

import (
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// TestPlanSkipsNotRegularSegments: a FIFO with a sealed segment's name
// and a directory with the name after the newest are segments that
// cannot be read (segment.Entry.NotRegular): the plan skips the FIFO as
// a segment that is no well-formed segment file, saying what it is, and
// takes the directory for the newest segment, never archived; the
// segments around them are archived as ever. They were left out of the
// listing, so the plan never named them.
func TestPlanSkipsNotRegularSegments(t *testing.T) {
	fx := newFixture(t, 4, segment.MinSegmentSize)
	if err := os.Remove(fx.seg(2)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(fx.seg(2), 0o640); err != nil {
		t.Fatal(err)
	}
	fx.last = 4 // unsealed: not archived
	odd := fx.seg(5)
	if err := os.Mkdir(odd, 0o750); err != nil {
		t.Fatal(err)
	}
	p, err := archive.PlanDir(fx.dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var compress []uint64
	for _, c := range p.Compress {
		compress = append(compress, c.Seq)
	}
	if len(compress) != 2 || compress[0] != 1 || compress[1] != 3 {
		t.Errorf("compress %v; want [1 3]", compress)
	}
	skipped := map[uint64]archive.Skip{}
	for _, s := range p.Skipped {
		skipped[s.Seq] = s
	}
	if s := skipped[2]; s.Path != fx.seg(2) || !s.Damaged || !strings.Contains(s.Reason, "is a named pipe (FIFO), not a regular file") {
		t.Errorf("segment 2 skipped as %+v; want damaged, a FIFO", s)
	}
	if s := skipped[5]; s.Path != odd || !strings.Contains(s.Reason, "newest") {
		t.Errorf("segment 5 skipped as %+v; want the newest", s)
	}
}
