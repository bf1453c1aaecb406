package verify

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A full check opened a sealed segment file twice: to read its footer,
// then to read it into the worker's buffer, or, one larger than the
// buffer, to map it and then again for the window it is read through.
// Each open is counted as in TestQuickOpensSealedSegmentsOnce. Segment 2
// is larger than the buffer; segment 3 is not sealed, and was opened a
// third time (its footer, its mapping, its window).
func TestFullOpensSegmentsOnce(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	l.seal(buildSize(2, 2*windowSize, payloads(2, 4), true))
	l.open(2, false)
	ino, wd := watchOpens(t, l.dir, 3)
	rep := mustDir(t, l.dir, Options{Workers: 1})
	if rep.Totals.Sealed != 2 || rep.Totals.Segments != 3 {
		t.Fatalf("%d segments, %d sealed; want 3, 2 sealed\n%s", rep.Totals.Segments, rep.Totals.Sealed, summary(rep))
	}
	for _, s := range rep.Segments[:2] {
		if !s.DigestChecked || !s.DigestOK || s.Findings != 0 {
			t.Errorf("%s: digest checked %v, ok %v, %d findings; want a good digest and none", s.Path, s.DigestChecked, s.DigestOK, s.Findings)
		}
	}
	opens := inotifyOpens(t, ino, wd)
	for seq := uint64(1); seq <= 3; seq++ {
		if name := segment.FileName(seq); opens[name] != 1 {
			t.Errorf("%s opened %d times; want 1 (all opens: %v)", name, opens[name], opens)
		}
	}
}
