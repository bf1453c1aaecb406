package reader_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// An archive of a segment never sealed (made by hand: compress-finished
// archives sealed segments only) in a dead writer's log: segment 2, with
// a reservation, a zero gap and no END, before segment 3 made ahead.
// writer.Open's recovery takes archives for sealed and never repairs one
// (FORMAT.md section 8, steps 2 and 3), and verify fails it (missing-end,
// its reservation and gap fatal unfinished). The reader reported the reservation,
// the gap and the missing END as crash leftovers, which "the next
// writer's recovery turns into padding": a repair that never comes. They
// are torn damage, before the recovery and after it.
func TestLeftoversOfAnUnsealedArchive(t *testing.T) {
	dir := t.TempDir()
	b, want, reserved, gap := leftoverSeg(t, dir)
	b.write(t, dir)
	archiveSegment(t, dir, 2, b.img)
	path := filepath.Join(dir, segment.ArchiveName(2))
	newSeg(3).write(t, dir)
	wantDmg := []string{
		fmt.Sprintf("%s@%d", reader.DamageTorn, reserved),
		fmt.Sprintf("%s@%d", reader.DamageTorn, gap),
		fmt.Sprintf("%s@%d", reader.DamageTorn, b.off),
	}
	check := func(step string) {
		t.Helper()
		checkLeftovers(t, step, dir, path, want, wantDmg, true)
		rep, err := verify.Dir(dir, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var fatal []string
		for _, f := range rep.Findings {
			if f.Seq == 2 && f.Fatal() {
				fatal = append(fatal, fmt.Sprintf("%s@%d", f.Class, f.Offset))
			}
		}
		wantFatal := fmt.Sprintf("[unfinished@%d unfinished@%d missing-end@%d]", reserved, gap, b.off)
		if fmt.Sprint(fatal) != wantFatal || rep.ExitCode(false) != verify.ExitFindings {
			t.Errorf("%s: verify exit %d, segment 2's fatal findings %v; want exit %d, %s", step, rep.ExitCode(false), fatal, verify.ExitFindings, wantFatal)
		}
	}
	check("no writer")
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if st := w.Recovered(); st.RecoveredSegments != 0 {
		t.Fatalf("recovery %+v; want the archive left as it is", st)
	}
	check("the writer that recovered the log alive")
}
