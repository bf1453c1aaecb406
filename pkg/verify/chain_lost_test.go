package verify

import (
	"fmt"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// checkChain verifies l's directory in full and quick mode and compares
// the findings with want, and whether the link to segment last was
// checked with checked.
func checkChain(t *testing.T, l *testLog, want []want, last uint64, checked bool) {
	t.Helper()
	for _, quick := range []bool{false, true} {
		rep := mustDir(t, l.dir, Options{Quick: quick})
		var got []string
		for _, f := range rep.Findings {
			got = append(got, key(f))
		}
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want))
		if !slices.Equal(got, w) {
			t.Errorf("quick=%v: findings:\n%swant %q", quick, summary(rep), w)
		}
		i := slices.IndexFunc(rep.Segments, func(s SegmentReport) bool { return s.Seq == last })
		if i < 0 || rep.Segments[i].ChainChecked != checked {
			t.Errorf("quick=%v: segment %d: chain checked %v, want %v", quick, last, !checked, checked)
		}
	}
}

// TestChainPastLostFooter: a sealed segment whose footer alone is lost
// (its magic zeroed, the whole footer zeroed, or its magic damaged) while
// a later segment is sealed. Its frames are intact up to END, so its
// digest is computed again from them, chained from the digest before it,
// and the next link is checked against it: a forged next segment is a
// chain finding, an intact one is not, with the sealed segments archived
// or not. (The link past it was left unchecked: a forged segment 3 went
// unnoticed.)
func TestChainPastLostFooter(t *testing.T) {
	fa := footerAt()
	end := build(2, payloads(2, 5), true).end
	cases := []struct {
		name string
		lose func(s *seg)
		want []want // segment 2's findings
	}{
		{"magic zeroed", func(s *seg) { clear(s.img[fa : fa+8]) }, []want{fmt.Sprintf("missing-end 2:%d", end)}},
		{"footer zeroed", func(s *seg) { clear(s.img[fa:]) }, []want{fmt.Sprintf("missing-end 2:%d", end)}},
		{"magic damaged", func(s *seg) { s.img[fa] ^= 1 }, []want{fmt.Sprintf("footer 2:%d", fa)}},
	}
	for _, tc := range cases {
		for _, forged := range []bool{false, true} {
			for _, archived := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/forged=%v/archived=%v", tc.name, forged, archived), func(t *testing.T) {
					l := newTestLog(t)
					s1, s2 := l.sealed(5), l.sealed(5)
					tc.lose(s2)
					s2.write(t)
					s3 := l.sealed(5)
					s4 := l.sealed(5)
					want := slices.Clone(tc.want)
					if forged {
						// Segment 3 replaced by one chained to something
						// else, and segment 4 resealed to it: only the
						// link from 2 to 3 is broken.
						s3.reseal(t, [segment.DigestSize]byte{7})
						s4.reseal(t, s3.footer.Digest)
						want = append(want, fmt.Sprintf("chain 3:%d", fa))
					}
					if archived {
						for _, s := range []*seg{s1, s3, s4} {
							archive(t, l, s, false)
						}
					}
					checkChain(t, l, want, 3, true)
				})
			}
		}
	}
}
