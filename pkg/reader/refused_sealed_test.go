package reader_test

import (
	"fmt"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A dead writer's unsealed segment before a sealed one is never
// recovered: recovery looks only after the newest sealed segment, and
// segments are sealed in order, so no writer left it so. Its missing END
// was torn already ("a later segment is sealed"), but its reservations
// and zero gaps were DamageReserved and DamageGap, whose CrashLeftover
// says recovery pads them, where verify calls them fatal unfinished. They
// are torn too, before a writer.Open and after it.
func TestLeftoversBeforeASealedSegmentAreTorn(t *testing.T) {
	dir := t.TempDir()
	one := newSeg(1)
	want := []rec{one.add(baseTS, []byte("before the reservation"))}
	reserved := one.reserve(40)
	gap := one.off
	one.off += segment.FrameSize(24) // zeros: a claim never stored
	want = append(want, one.add(baseTS+1, []byte("after the gap")))
	end := one.off
	path := one.write(t, dir)
	two := newSeg(2)
	want = append(want, two.add(baseTS+2, []byte("sealed")))
	two.seal(t, [segment.DigestSize]byte{})
	two.write(t, dir)

	wantDmg := []string{fmt.Sprint("torn@", reserved), fmt.Sprint("torn@", gap), fmt.Sprint("torn@", end)}
	checkLeftovers(t, "no writer", dir, path, want, wantDmg, true)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if st := w.Recovered(); st.RecoveredSegments != 0 {
		t.Fatalf("recovery %+v; want segment 1 not looked at", st)
	}
	checkLeftovers(t, "a writer alive", dir, path, want, wantDmg, true)
}
