package verify

import (
	"os"
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
