package verify

import (
	"bytes"
	"fmt"
	"os"
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

// TestChainPastArchiveWithLostContent: an archive whose content is lost
// (its zstd frame garbled, or the blocks holding the footer) but whose
// summary is intact. The summary is a copy of the footer, trusted when
// its CRC checks: recovery chains to its digest when the archive is the
// newest sealed segment (writer.sealedDigest), and the next segment was
// sealed chained to the same digest before it was archived. So both
// links are checked against it: a forged segment after the archive is a
// chain finding, an intact one is not. (Both links were left unchecked.)
func TestChainPastArchiveWithLostContent(t *testing.T) {
	const size = 1 << 20
	fa3 := footerAt()
	cases := []struct {
		name string
		lose func(t *testing.T, p string, good []byte, frame int)
	}{
		{"frame garbled", func(t *testing.T, p string, good []byte, frame int) {
			bad := bytes.Clone(good)
			for i := range frame {
				bad[i] ^= 0x5a
			}
			if err := os.WriteFile(p, bad, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"footer's block lost", func(t *testing.T, p string, good []byte, frame int) {
			for at := frame - 32; ; at-- {
				if at < frame/2 {
					t.Fatal("no run of flipped bytes loses the footer")
				}
				if ad, _ := flipRun(t, p, good, at); ad.Lost > 0 && ad.Lost < size-segment.FooterSize {
					return
				}
			}
		}},
	}
	for _, tc := range cases {
		for _, forged := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/forged=%v", tc.name, forged), func(t *testing.T) {
				l := newTestLog(t)
				l.sealed(5)
				s2 := l.seal(buildSize(l.next, size, payloads(l.next, 200), true))
				s3, s4 := l.sealed(5), l.sealed(5)
				p, good, frame := archiveBytes(t, l, s2)
				tc.lose(t, p, good, frame)
				if forged {
					s3.reseal(t, [segment.DigestSize]byte{7})
					s4.reseal(t, s3.footer.Digest)
				}
				for _, quick := range []bool{false, true} {
					rep := mustDir(t, l.dir, Options{Quick: quick})
					chains := 0
					for _, f := range rep.Findings {
						switch {
						case f.Class == Chain && f.Seq == 3 && f.Offset == fa3:
							chains++
						case f.Seq != 2 || f.Class == Chain:
							t.Errorf("quick=%v: finding %s", quick, key(f))
						}
					}
					if want := map[bool]int{false: 0, true: 1}[forged]; chains != want {
						t.Errorf("quick=%v: %d chain findings on segment 3, want %d\n%s", quick, chains, want, summary(rep))
					}
					for _, s := range rep.Segments {
						if (s.Seq == 2 || s.Seq == 3) && !s.ChainChecked {
							t.Errorf("quick=%v: segment %d: chain not checked", quick, s.Seq)
						}
					}
				}
			})
		}
	}
}
