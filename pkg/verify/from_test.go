package verify

import (
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A dead writer's segment 2 that recovery leaves as it is (a damaged
// committed frame, or an END claim with bytes behind its header), with
// the new writer appending to segment 3 and its LOCK saying so (from 3).
// Segment 2 was taken for the live writer's active segment: its
// reservation and its missing END were no findings, and the damaged END
// claim passed verify clean (exit 0) while the writer was alive, though
// no writer will ever finish or seal it. Below the live writer's first
// segment it is out of the tail, as once a later segment is sealed:
// missing-end, and its reservation unfinished, both fatal.
func TestUnsealedBelowLiveWritersFirstSegment(t *testing.T) {
	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			l, _, want := refusedLog(t, tc.damage)
			w, err := writer.Open(l.dir, writer.Options{SegmentSize: testSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st := w.Recovered(); st.DamagedSegments != 1 || st.RecoveredSegments != 0 {
				t.Fatalf("recovery %+v; want segment 2 left as it is", st)
			}
			if info, err := segment.WriterInfo(l.dir); err != nil || !info.Alive || info.From != 3 {
				t.Fatalf("LOCK says %+v, %v; want a live writer appending from segment 3", info, err)
			}
			if _, err := w.Append([]byte("after recovery")); err != nil {
				t.Fatal(err)
			}
			for _, quick := range []bool{false, true} {
				rep := mustDir(t, l.dir, Options{Quick: quick})
				var got []string
				for _, f := range rep.Findings {
					got = append(got, key(f))
					if f.Residue || !f.Fatal() {
						t.Errorf("quick=%v: %s is not fatal, or is residue", quick, key(f))
					}
				}
				if !slices.Equal(got, want) || rep.ExitCode(false) != ExitFindings {
					t.Errorf("quick=%v: exit %d, findings\n%swant exit %d, %q", quick, rep.ExitCode(false), summary(rep), ExitFindings, want)
				}
				states := map[uint64]State{}
				for _, sr := range rep.Segments {
					states[sr.Seq] = sr.State
				}
				if states[2] != StateUnsealed || states[3] != StateOpen {
					t.Errorf("quick=%v: states %v; want 2 unsealed, 3 open", quick, states)
				}
			}
		})
	}
}

// A live writer's segments below its first one are final: their findings
// are not looked at again (each look waits for the writer, liveRecheck),
// as a frame being stored there is none.
func TestNoLiveSuspectsBelowTheWritersFirstSegment(t *testing.T) {
	damaged := &result{order: 2, footerAbsent: true}
	damaged.found.count = map[Class]int{Torn: 1}
	active := &result{order: 3, footerAbsent: true}
	results := []*result{{order: 1, sealed: true}, damaged, active}
	if got := liveSuspects(results, 0); !slices.Equal(got, []int{1}) {
		t.Fatalf("no first segment known: suspects %v, want [1]", got)
	}
	if got := liveSuspects(results, 3); len(got) != 0 {
		t.Fatalf("writer appending from 3: suspects %v, want none", got)
	}
}
