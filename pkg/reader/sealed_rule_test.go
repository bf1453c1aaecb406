package reader_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// copiedAfterOpen writes segments 1 and 2 sealed, 3 unsealed with the
// records fill adds (the writer died, or holds the log), and as segment 4
// a copy of segment 1 renamed into place: its footer is valid, but names
// sequence 1. It returns the records of segments 1 to 3 and 1's image.
func copiedAfterOpen(t *testing.T, dir string, fill func(*segBuilder) []rec) []rec {
	t.Helper()
	var want []rec
	var prev [segment.DigestSize]byte
	var first []byte
	for seq := uint64(1); seq <= 2; seq++ {
		b := newSeg(seq)
		want = append(want, b.add(baseTS+int64(seq), payload(int(seq))))
		prev = b.seal(t, prev)
		b.write(t, dir)
		if seq == 1 {
			first = b.img
		}
	}
	b := newSeg(3)
	want = append(want, fill(b)...)
	b.write(t, dir)
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(4)), first, 0o640); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestResidueBeforeCopiedSegment: a dead writer's unsealed segment 3
// before a copy of segment 1 named segment 4. Recovery does not count the
// copy as sealed (segment.SealedFooter refuses a footer naming another
// sequence; FORMAT.md section 8), so writer.Open seals segment 3 as crash
// residue and verify says so. The reader, replaying or following, must
// report segment 3's end as unfinished (a crash leftover), not as torn
// "before a later sealed segment". (Its laterSealed and atTail took any
// valid footer for sealed: tail reported damage where verify reports
// residue.)
func TestResidueBeforeCopiedSegment(t *testing.T) {
	fill := func(b *segBuilder) []rec {
		return []rec{b.add(baseTS+10, []byte("a")), b.add(baseTS+11, []byte("b"))}
	}
	dir := t.TempDir()
	want := copiedAfterOpen(t, dir, fill)
	tailAt := want[len(want)-1].pos.Offset + segment.FrameSize(1)

	check := func(name string, dmg []reader.Damage) {
		t.Helper()
		var unfinished, header bool
		for _, d := range dmg {
			switch {
			case d.Seq == 3 && d.Kind == reader.DamageUnfinished && d.Offset == tailAt:
				unfinished = true
			case d.Seq == 4 && d.Kind == reader.DamageSegment:
				header = true
			default:
				t.Errorf("%s: unexpected damage %v", name, &d)
			}
		}
		if !unfinished || !header {
			t.Errorf("%s: want segment 3 unfinished at %d and segment 4's header reported, got %v", name, tailAt, dmg)
		}
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got[:len(want)], want)
	check("replay", dmg)

	fw := follow(t, dir, reader.Options{})
	deadline := time.Now().Add(10 * time.Second)
	for len(fw.damage()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	fw.stop(t)
	check("follow", fw.damage())

	// What verify and recovery say of the same log.
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Seq == 3 && (f.Class != verify.Unfinished || !f.Residue) {
			t.Errorf("verify: segment 3: %s (%s), want unfinished residue", f.Class, f.Reason)
		}
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	st := w.Recovered()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.RecoveredSegments != 1 || st.DamagedSegments != 1 {
		t.Errorf("recovery sealed %d segments and left %d, want segment 3 sealed and 4 left", st.RecoveredSegments, st.DamagedSegments)
	}
}

// TestLiveWriterReservationBeforeCopiedSegment: a writer holds the log,
// and a frame in segment 3 is reserved, not yet committed; segment 4 is a
// copy of segment 1. The copy does not say segment 3 is finished (it is
// not sealed as recovery counts it), so the reader stops before the
// reservation, as with no segment 4, rather than skip it as abandoned
// and return the frames after it.
func TestLiveWriterReservationBeforeCopiedSegment(t *testing.T) {
	dir := t.TempDir()
	want := copiedAfterOpen(t, dir, func(b *segBuilder) []rec {
		a := b.add(baseTS+10, []byte("a"))
		b.reserve(8)
		b.add(baseTS+12, []byte("c"))
		return []rec{a}
	})
	lk, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Fatalf("damage reported before a live writer's reservation: %v", dmg)
	}
}
