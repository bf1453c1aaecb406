package verify

import (
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// tears are the two ways a power cut tears the last frame of the active
// segment, committed but its Append not returned, its pages reaching the
// disk apart (found by TestPowerLossExt4): the page with the header and
// commit word without the payload's, or the payload's without the page
// holding the commit word.
var tears = []struct {
	name string
	tear func(img []byte, off, length int64)
}{
	{"payload zeroed", func(img []byte, off, length int64) { clear(img[off+segment.FrameHeaderSize : off+length]) }},
	{"header zeroed", func(img []byte, off, length int64) { clear(img[off : off+segment.FrameHeaderSize]) }},
}

// tornLog is a log of a sealed segment and an unsealed one of five
// records, record i of the unsealed one torn as tear says; later adds a
// sealed segment after it.
func tornLog(t *testing.T, tear func([]byte, int64, int64), i int, later bool) (*testLog, *seg) {
	l := newTestLog(t)
	l.sealed(3)
	s := build(l.next, payloads(l.next, 5), false)
	tear(s.img, s.offs[i], int64(segment.FrameHeaderSize+len(s.payload[i])))
	l.add(s)
	if later {
		l.sealed(2)
	}
	return l, s
}

// recoverDir opens the log in dir, recovering it, and closes it.
func recoverDir(t *testing.T, dir string) writer.Stats {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	st := w.Recovered()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// A torn tail of a dead writer's unsealed segment (its last frame torn,
// nothing intact after it) is crash residue, unfinished, which recovery
// finishes: exit 3 before recovery, 0 after it. It used to be a torn
// finding and a segment recovery left unsealed for good: exit 1 forever.
func TestTornTailIsResidue(t *testing.T) {
	for _, tc := range tears {
		t.Run(tc.name, func(t *testing.T) {
			l, s := tornLog(t, tc.tear, 4, false)
			rep := mustDir(t, l.dir, Options{})
			if rep.ExitCode(false) != ExitUnfinished || !has(rep, Unfinished, 2, s.offs[4]) {
				t.Fatalf("before recovery: exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
			}
			for _, f := range rep.Findings {
				if f.Offset == s.offs[4] && (!f.Residue || !strings.Contains(f.Reason, "torn tail")) {
					t.Errorf("the torn tail's finding: %+v", f)
				}
			}
			if st := recoverDir(t, l.dir); st.RecoveredSegments != 1 || st.TornTails != 1 || st.DamagedSegments != 0 {
				t.Fatalf("recovery stats %+v", st)
			}
			rep = mustDir(t, l.dir, Options{})
			if rep.ExitCode(true) != ExitClean || rep.Segments[1].State != StateRecovered || rep.Segments[1].Records != 4 {
				t.Fatalf("after recovery: exit %d, segment %+v\n%s", rep.ExitCode(true), rep.Segments[1], summary(rep))
			}
		})
	}
}

// A torn frame with an intact committed frame after it is damage: torn,
// and recovery leaves the segment unsealed (missing-end), before and
// after it. So is a torn tail where no recovery finishes it, in an
// unsealed segment before a sealed one.
func TestTornFrameNotATail(t *testing.T) {
	for _, tc := range tears {
		for _, later := range []bool{false, true} {
			i := 3
			if later {
				i = 4 // the tail, but a later segment is sealed
			}
			l, s := tornLog(t, tc.tear, i, later)
			for _, after := range []bool{false, true} {
				if after {
					// Recovery never looks at a segment before a sealed one.
					if st := recoverDir(t, l.dir); st.DamagedSegments != map[bool]int{false: 1}[later] || st.TornTails != 0 || st.RecoveredSegments != 0 {
						t.Fatalf("%s, later sealed %v: recovery stats %+v", tc.name, later, st)
					}
				}
				rep := mustDir(t, l.dir, Options{})
				if rep.ExitCode(false) != ExitFindings || !has(rep, Torn, 2, s.offs[i]) || has(rep, Unfinished, 2, s.offs[i]) {
					t.Fatalf("%s, later sealed %v, after recovery %v: exit %d, findings:\n%s", tc.name, later, after, rep.ExitCode(false), summary(rep))
				}
			}
		}
	}
}
