package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	compress "github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// tornOpen adds an unsealed segment whose second record is torn, with
// records after it: what recovery leaves as it is. The log's digest does
// not move, as recovery's does not.
func (l *testLog) tornOpen(t *testing.T) *seg {
	s := l.open(5, false)
	s.img[s.offs[1]+segment.FrameHeaderSize+2] ^= 0x20
	s.write(t)
	return s
}

// leftFindings are the findings of segment seq built by tornOpen.
func leftFindings(seq uint64) []want {
	s := build(seq, payloads(seq, 5), false)
	return []want{fmt.Sprintf("torn %d:%d", seq, s.offs[1]), fmt.Sprintf("missing-end %d:%d", seq, s.end)}
}

// TestChainPastUnsealed: a segment recovery left unsealed (damaged) is
// not part of the chain: the next sealed segment chains to the last one
// sealed before it, or from zeros when none was (FORMAT.md section 6),
// and verify checks that link in full and quick mode, with the sealed
// segments archived or not. A segment that was sealed and damaged
// afterwards, footer included, is another matter: the next one chains to
// its lost digest, and that link is left unchecked rather than reported.
// (Links across unsealed segments were never checked: a replaced segment
// after one went unnoticed.)
func TestChainPastUnsealed(t *testing.T) {
	fa := footerAt()
	forge := func(t *testing.T, s *seg) { s.reseal(t, [segment.DigestSize]byte{7}) }
	cases := []struct {
		name string
		// build makes the log and returns its intact sealed segments, the
		// one whose link is looked at last.
		build   func(t *testing.T, l *testLog) []*seg
		want    []want
		checked bool
	}{
		{
			name: "one left unsealed",
			build: func(t *testing.T, l *testLog) []*seg {
				s1 := l.sealed(5)
				l.tornOpen(t)
				return []*seg{s1, l.sealed(5)}
			},
			want:    leftFindings(2),
			checked: true,
		},
		{
			name: "one left unsealed, the link after it forged",
			build: func(t *testing.T, l *testLog) []*seg {
				s1 := l.sealed(5)
				l.tornOpen(t)
				s3 := l.sealed(5)
				forge(t, s3)
				return []*seg{s1, s3}
			},
			want:    append(leftFindings(2), fmt.Sprintf("chain 3:%d", fa)),
			checked: true,
		},
		{
			name: "two left unsealed, the link after them forged",
			build: func(t *testing.T, l *testLog) []*seg {
				s1 := l.sealed(5)
				l.tornOpen(t)
				l.tornOpen(t)
				s4 := l.sealed(5)
				forge(t, s4)
				return []*seg{s1, s4}
			},
			want:    append(append(leftFindings(2), leftFindings(3)...), fmt.Sprintf("chain 4:%d", fa)),
			checked: true,
		},
		{
			name: "the first segment left unsealed",
			build: func(t *testing.T, l *testLog) []*seg {
				l.tornOpen(t)
				return []*seg{l.sealed(5)}
			},
			want:    leftFindings(1),
			checked: true,
		},
		{
			name: "the first segment left unsealed, the link after it forged",
			build: func(t *testing.T, l *testLog) []*seg {
				l.tornOpen(t)
				s2 := l.sealed(5)
				forge(t, s2)
				return []*seg{s2}
			},
			want:    append(leftFindings(1), fmt.Sprintf("chain 2:%d", fa)),
			checked: true,
		},
		{
			name: "sealed, then its record and footer checksum damaged",
			build: func(t *testing.T, l *testLog) []*seg {
				s1, s2 := l.sealed(5), l.sealed(5)
				s2.img[s2.offs[1]+segment.FrameHeaderSize+2] ^= 0x20
				s2.img[fa+40] ^= 4
				s2.write(t)
				return []*seg{s1, l.sealed(5)}
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[1]), fmt.Sprintf("footer 2:%d", fa+124)},
		},
		{
			name: "sealed, then its record and footer magic damaged",
			build: func(t *testing.T, l *testLog) []*seg {
				s1, s2 := l.sealed(5), l.sealed(5)
				s2.img[s2.offs[1]+segment.FrameHeaderSize+2] ^= 0x20
				s2.img[fa] ^= 1
				s2.write(t)
				return []*seg{s1, l.sealed(5)}
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[1]), fmt.Sprintf("footer 2:%d", fa)},
		},
		{
			// One damage from inside the last record to the end of the
			// file: torn, then zeros, the footer's too. Nothing intact
			// lies between, so nothing says it was never sealed.
			name: "sealed, then zeroed from its last record on",
			build: func(t *testing.T, l *testLog) []*seg {
				s1, s2 := l.sealed(5), l.sealed(5)
				clear(s2.img[s2.offs[4]+segment.FrameHeaderSize+1:])
				s2.write(t)
				return []*seg{s1, l.sealed(5)}
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[4]),
				fmt.Sprintf("missing-end 2:%d", segment.RecordLimit(testSize))},
		},
	}
	for _, tc := range cases {
		for _, archived := range []bool{false, true} {
			for _, quick := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/archived=%v/quick=%v", tc.name, archived, quick), func(t *testing.T) {
					l := newTestLog(t)
					sealed := tc.build(t, l)
					if archived {
						for _, s := range sealed {
							archive(t, l, s, false)
						}
					}
					rep := mustDir(t, l.dir, Options{Quick: quick})
					var got []string
					for _, f := range rep.Findings {
						got = append(got, key(f))
					}
					slices.Sort(got)
					w := slices.Sorted(slices.Values(tc.want))
					if !slices.Equal(got, w) {
						t.Errorf("findings:\n%s\nwant %q", summary(rep), w)
					}
					last := sealed[len(sealed)-1].seq
					for _, s := range rep.Segments {
						if s.Seq == last && s.ChainChecked != tc.checked {
							t.Errorf("segment %d: chain checked %v, want %v", last, s.ChainChecked, tc.checked)
						}
					}
				})
			}
		}
	}
}

// TestChainPastSegmentRecoveryLeft: the log of TestChainPastUnsealed made
// by the writer. It is killed (its files copied as it runs) with records
// in segment 2; one of them is then torn, so writer.Open recovers the log
// leaving segment 2 as it is, and chains the next segment it seals to
// segment 1. Verify finds segment 2's damage and nothing else, the link
// from 3 to 1 checked, in full and quick mode, and once every sealed
// segment but the newest is archived.
func TestChainPastSegmentRecoveryLeft(t *testing.T) {
	opts := writer.Options{SegmentSize: testSize, Sync: writer.SyncNone}
	live := t.TempDir()
	w, err := writer.Open(live, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, in2 := 0, 0; in2 < 5; i++ {
		pos, err := w.Append(fmt.Appendf(nil, "record %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if pos.Seq == 2 {
			in2++
		}
	}
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		// The sealer seals segment 1 in the background.
		if _, err := segment.ReadFooter(filepath.Join(live, segment.FileName(1))); err == nil {
			break
		} else if time.Since(start) > 10*time.Second {
			t.Fatalf("segment 1 not sealed: %v", err)
		}
	}
	dir := copyDir(t, live)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	p2 := filepath.Join(dir, segment.FileName(2))
	img, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(img, 2)
	if len(recs) < 5 {
		t.Fatalf("segment 2 holds %d records", len(recs))
	}
	second := segment.HeaderSize + segment.FrameSize(len(recs[0]))
	img[second+segment.FrameHeaderSize+1] ^= 0x20
	if err := os.WriteFile(p2, img, 0o640); err != nil {
		t.Fatal(err)
	}

	w, err = writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Recovered(); st.DamagedSegments != 1 {
		t.Errorf("recovery stats %+v, want segment 2 damaged", st)
	}
	if _, err := w.Append([]byte("after recovery")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(label string) {
		t.Helper()
		wantTorn := fmt.Sprintf("torn 2:%d", second)
		for _, quick := range []bool{false, true} {
			rep := mustDir(t, dir, Options{Quick: quick})
			torn, end := 0, 0
			for _, f := range rep.Findings {
				switch {
				case key(f) == wantTorn:
					torn++
				case f.Class == MissingEnd && f.Seq == 2:
					end++
				default:
					t.Errorf("%s, quick=%v: finding %s", label, quick, key(f))
				}
			}
			if torn != 1 || end != 1 {
				t.Errorf("%s, quick=%v: findings\n%swant %s and segment 2's missing END", label, quick, summary(rep), wantTorn)
			}
			i := slices.IndexFunc(rep.Segments, func(s SegmentReport) bool { return s.Seq == 3 })
			if i < 0 || !rep.Segments[i].ChainChecked {
				t.Errorf("%s, quick=%v: segment 3's link to segment 1 not checked: %+v", label, quick, rep.Segments)
			}
		}
	}
	check("recovered")
	if res, err := compress.Run(context.Background(), dir, compress.Options{Jobs: 1}); err != nil || res.Err() != nil {
		t.Fatalf("archive.Run: %v %v", err, res.Err())
	}
	check("archived")
}
