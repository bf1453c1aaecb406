package reader_test

import (
	"maps"
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
// residue and verify says so. A replay must report segment 3's end as
// unfinished (a crash leftover), not as torn "before a later sealed
// segment". (Its laterSealed and atTail took any valid footer for
// sealed: tail reported damage where verify reports residue.) A follower
// waits at segment 3's end instead: the copy is no segment the writer
// moved on into (laterHasFrames), and the next writer's recovery seals
// segment 3, after which it reads on, having skipped nothing.
func TestResidueBeforeCopiedSegment(t *testing.T) {
	fill := func(b *segBuilder) []rec {
		return []rec{b.add(baseTS+10, []byte("a")), b.add(baseTS+11, []byte("b"))}
	}
	dir := t.TempDir()
	want := copiedAfterOpen(t, dir, fill)
	tailAt := want[len(want)-1].pos.Offset + segment.FrameSize(1)
	checkCopied(t, dir, want, tailAt)

	fw := follow(t, dir, reader.Options{})
	fw.waitFor(t, len(want), 10*time.Second)
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
	got := fw.waitFor(t, len(want)+1, 10*time.Second)
	if x := got[len(want)]; x.pos.Seq != 4 || string(x.payload) != string(want[0].payload) {
		t.Errorf("follow: after segment 3, record %v %q; want the copy's, at 4", x.pos, x.payload)
	}
	fw.stop(t)
	if dmg := fw.damage(); len(dmg) != 1 || dmg[0].Seq != 4 || dmg[0].Kind != reader.DamageSegment {
		t.Errorf("follow: damage %v, want segment 4's header alone", dmg)
	}
}

// checkCopied checks what a replay and verify say of copiedAfterOpen's
// log, its writer dead: segment 3 ends at tailAt unfinished, crash
// residue, and segment 4's header is reported.
func checkCopied(t *testing.T, dir string, want []rec, tailAt int64) {
	t.Helper()
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got[:len(want)], want)
	var unfinished, header bool
	for _, d := range dmg {
		switch {
		case d.Seq == 3 && d.Kind == reader.DamageUnfinished && d.Offset == tailAt:
			unfinished = true
		case d.Seq == 4 && d.Kind == reader.DamageSegment:
			header = true
		default:
			t.Errorf("replay: unexpected damage %v", &d)
		}
	}
	if !unfinished || !header {
		t.Errorf("replay: want segment 3 unfinished at %d and segment 4's header reported, got %v", tailAt, dmg)
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	unfinished = false
	for _, f := range rep.Findings {
		if f.Seq == 3 {
			unfinished = f.Class == verify.Unfinished && f.Residue && f.Offset == tailAt
			if !unfinished {
				t.Errorf("verify: segment 3: %s at %d (%s), want unfinished residue at %d", f.Class, f.Offset, f.Reason, tailAt)
			}
		}
	}
	if !unfinished {
		t.Errorf("verify: segment 3 not reported as unfinished residue")
	}
}

// TestEmptyResidueIsReported: an unsealed segment with nothing after its
// header, not the newest, its writer gone and no later segment sealed as
// recovery counts it: before a copy of another segment (copiedAfterOpen
// with nothing added to segment 3), or a crashed writer's prepared
// segment before the file it created ahead. writer.Open seals it (it is
// not the newest), and verify reports it as unfinished crash residue; a
// replay said nothing (it reported an unfinished segment only past
// offset 64), so tail and verify disagreed about the same log.
func TestEmptyResidueIsReported(t *testing.T) {
	t.Run("before a copy", func(t *testing.T) {
		dir := t.TempDir()
		want := copiedAfterOpen(t, dir, func(*segBuilder) []rec { return nil })
		checkCopied(t, dir, want, segment.HeaderSize)
	})
	t.Run("crashed writer", func(t *testing.T) {
		// Segment 1 sealed, 2 the one appended to, 3 prepared, 4 created
		// ahead: the newest, which verify calls prepared and the reader
		// ends at.
		dir := t.TempDir()
		b := newSeg(1)
		want := []rec{b.add(baseTS, []byte("a"))}
		b.seal(t, [segment.DigestSize]byte{})
		b.write(t, dir)
		c := newSeg(2)
		want = append(want, c.add(baseTS+1, []byte("b")))
		c.write(t, dir)
		newSeg(3).write(t, dir)
		newSeg(4).write(t, dir)
		got, dmg := readAll(t, dir, reader.Options{})
		sameRecs(t, got, want)
		wantAt := map[uint64]int64{2: c.off, 3: segment.HeaderSize}
		gotAt := map[uint64]int64{}
		for _, d := range dmg {
			if d.Kind != reader.DamageUnfinished {
				t.Errorf("replay: unexpected damage %v", &d)
			}
			gotAt[d.Seq] = d.Offset
		}
		if !maps.Equal(gotAt, wantAt) {
			t.Errorf("replay: unfinished at %v, want %v", gotAt, wantAt)
		}
		rep, err := verify.Dir(dir, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		clear(gotAt)
		for _, f := range rep.Findings {
			if f.Class != verify.Unfinished || !f.Residue {
				t.Errorf("verify: %s at %d:%d (%s), want only unfinished residue", f.Class, f.Seq, f.Offset, f.Reason)
			}
			gotAt[f.Seq] = f.Offset
		}
		if !maps.Equal(gotAt, wantAt) {
			t.Errorf("verify: unfinished at %v, want %v as the reader", gotAt, wantAt)
		}
	})
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
