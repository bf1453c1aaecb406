package reader_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A dead writer's newest segment whose END claim (a reservation up to
// the record limit) has a non-zero byte behind its header: recovery
// leaves it unsealed, as damage that would hide committed frames under
// an END (FORMAT.md section 8, step 3.4), and verify fails it. The reader
// reported it as a reservation never committed, a crash leftover that
// "the next writer's recovery turns into padding" (tail: a warning, exit
// 0). It is torn damage, before recovery and after it, while the writer
// that recovered the log appends to the next segment; a clean END claim
// is still a crash leftover.
func TestDamagedEndClaimIsTorn(t *testing.T) {
	limit := segment.RecordLimit(segSize)
	for _, damaged := range []bool{false, true} {
		dir := t.TempDir()
		b := newSeg(1)
		a := b.add(baseTS, []byte("before the claim"))
		claim := b.reserve(int(limit - b.off - segment.FrameHeaderSize))
		if damaged {
			b.img[claim+segment.FrameHeaderSize+8] = 'x'
		}
		path := b.write(t, dir)
		want := func(step string) {
			t.Helper()
			got, dmg := readAll(t, dir, reader.Options{})
			sameRecs(t, got, []rec{a})
			if len(dmg) != 1 || dmg[0].Offset != claim || dmg[0].Len != limit-claim {
				t.Fatalf("damaged %v, %s: damage %v; want one report at %d", damaged, step, dmg, claim)
			}
			d := dmg[0]
			var ce *segment.CorruptError
			switch {
			case !damaged && d.Kind != reader.DamageReserved:
				t.Errorf("%s: clean END claim reported as %v: %v", step, d.Kind, &d)
			case damaged && (d.Kind != reader.DamageTorn || d.Kind.CrashLeftover() || !errors.As(d.Err, &ce) || ce.Offset != claim+segment.FrameHeaderSize+8 || ce.Path != path):
				t.Errorf("%s: damaged END claim reported as %v: %v", step, d.Kind, &d)
			}
		}
		want("no writer")
		if !damaged {
			continue
		}
		w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if st := w.Recovered(); st.DamagedSegments != 1 {
			t.Fatalf("recovery %+v; want segment 1 left as it is", st)
		}
		if _, err := segment.SealedFooter(filepath.Join(dir, segment.FileName(1))); !errors.Is(err, segment.ErrNoFooter) {
			t.Fatalf("segment 1 after recovery: %v; want it unsealed", err)
		}
		want("the writer that recovered it alive")
	}
}
