package verify

import (
	"os"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A footer's time range is 0, 0 when the segment holds no records
// (FORMAT.md section 6); one rewritten with a valid CRC to claim a range
// is a footer finding (tail --since passes over sealed segments by their
// footers' times).
func TestEmptySegmentFooterTimeRange(t *testing.T) {
	l := newTestLog(t)
	l.sealed(2)
	s := l.sealed(0)
	l.sealed(2)
	s.setFooter(t, func(f *segment.Footer) { f.MinTime, f.MaxTime = 1, 1<<62 })
	rep := mustDir(t, l.dir, Options{})
	if !has(rep, Footer, s.seq, footerAt()) || rep.ExitCode(false) != ExitFindings {
		t.Fatalf("a footer claiming a time range for 0 records is not reported (exit %d)\n%s", rep.ExitCode(false), summary(rep))
	}
}

// A newest segment that cannot be decoded (cut to 32 bytes: no header, no
// footer) is not sealed, so the unsealed segment before it is still the
// log's open tail (the live writer's active segment, or a dead writer's
// crash residue that recovery seals), not a missing-end "before a sealed
// segment". Also when only that segment is asked for.
func TestDamagedNewestSegmentIsNotSealed(t *testing.T) {
	for _, alive := range []bool{true, false} {
		l := newTestLog(t)
		l.sealed(3)
		active := l.open(4, false)
		prep := l.open(0, false)
		if err := os.Truncate(prep.path, 32); err != nil {
			t.Fatal(err)
		}
		var lk *segment.Lock
		if alive {
			var err error
			if lk, err = segment.AcquireLock(l.dir); err != nil {
				t.Fatal(err)
			}
		}
		whole := mustDir(t, l.dir, Options{})
		only, err := Files([]string{active.path}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if lk != nil {
			lk.Release()
		}
		for _, rep := range []*Report{whole, only} {
			for _, f := range rep.Findings {
				if f.Seq == active.seq && f.Class == MissingEnd {
					t.Errorf("alive=%v: the open segment %d is reported as %s (%s), as if a later segment were sealed\n%s",
						alive, active.seq, f.Class, f.Reason, summary(rep))
				}
			}
		}
		if alive && (!whole.Segments[1].Live || !only.Segments[0].Live) {
			t.Errorf("alive=%v: the writer's active segment is not live: %+v, %+v", alive, whole.Segments[1], only.Segments[0])
		}
	}
}

// TestResidueBeforeRefusedHeader: a dead writer's last segment, unsealed,
// followed by a segment with a valid footer under a header recovery
// refuses (a copy of another segment, a header whose CRC fails). Recovery
// does not count that one as sealed (FORMAT.md section 8, step 3.1), so
// the unsealed segment before it is after the newest sealed one, and
// writer.Open seals it: it is crash residue, as verify must say, in the
// whole directory and when only it is asked for, not a missing-end
// before a sealed segment. (Verify took any valid footer for sealed: it
// reported a fatal missing-end for a segment recovery seals.)
func TestResidueBeforeRefusedHeader(t *testing.T) {
	spoils := []struct {
		name  string
		spoil func(s1, s4 *seg)
		at    int64 // the header's torn finding
	}{
		{"copy of another segment", func(s1, s4 *seg) { s4.img = slices.Clone(s1.img) }, 16},
		{"header checksum", func(s1, s4 *seg) { s4.img[33] ^= 1 }, 60},
	}
	for _, tc := range spoils {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t)
			s1 := l.sealed(5)
			l.sealed(5)
			s3 := l.open(4, false)
			s4 := l.sealed(5)
			tc.spoil(s1, s4)
			s4.write(t)
			cp := copyDir(t, l.dir)

			whole := mustDir(t, l.dir, Options{})
			only, err := Files([]string{s3.path}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for name, rep := range map[string]*Report{"whole": whole, "only": only} {
				residue := false
				for _, f := range rep.Findings {
					if f.Seq != s3.seq {
						continue
					}
					residue = residue || f.Class == Unfinished && f.Residue
					if f.Class == MissingEnd || !f.Residue {
						t.Errorf("%s: segment 3: %s (%s), but recovery seals it\n%s", name, f.Class, f.Reason, summary(rep))
					}
				}
				if !residue {
					t.Errorf("%s: segment 3 is not crash residue:\n%s", name, summary(rep))
				}
			}
			if !has(whole, Torn, s4.seq, tc.at) || whole.ExitCode(false) != ExitFindings {
				t.Errorf("segment 4's header not reported, or exit %d:\n%s", whole.ExitCode(false), summary(whole))
			}

			// What recovery does with the same directory.
			st := recoverDir(t, cp)
			if st.RecoveredSegments != 1 || st.DamagedSegments != 1 {
				t.Errorf("recovery sealed %d segments and left %d, want segment 3 sealed and 4 left", st.RecoveredSegments, st.DamagedSegments)
			}
		})
	}
}

// A footer's max time is the largest DATA timestamp (FORMAT.md section
// 6), negative ones included, whoever sealed the segment: one sealed by
// recovery (FlagRecovered) that says 0 for records all stamped before
// 1970 is a footer finding like any other wrong range. (Verify excused
// exactly that footer, from a recovery that no longer exists, which
// started the max at 0.)
func TestRecoveredFooterMaxTimeOfNegativeTimes(t *testing.T) {
	l := newTestLog(t)
	s := build(l.next, nil, false)
	off := int64(segment.HeaderSize)
	for i, p := range payloads(s.seq, 3) {
		off = segment.PutFrame(s.img, s.seq, off, segment.TypeData, -int64(10-i)*second, p)
	}
	segment.PutEnd(s.img, s.seq, off, baseCreated)
	f, err := segment.Seal(s.img, l.prev, segment.FlagRecovered, baseCreated+second)
	if err != nil {
		t.Fatal(err)
	}
	if f.MaxTime != -8*second {
		t.Fatalf("recovery's seal gives max time %d for records stamped -10 s to -8 s", f.MaxTime)
	}
	s.footer = f
	l.add(s)
	s.setFooter(t, func(f *segment.Footer) { f.MaxTime = 0 })
	rep := mustDir(t, l.dir, Options{TimeTolerance: -1})
	if !has(rep, Footer, s.seq, footerAt()) {
		t.Fatalf("a recovered footer claiming max time 0 for records stamped -10 s to -8 s is not reported\n%s", summary(rep))
	}
}
