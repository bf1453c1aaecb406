package reader_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A dead writer's segment whose last frame a power cut tore (committed,
// its Append not returned, its pages on disk apart), nothing intact
// after it, is a torn tail, which writer.Open's recovery finishes
// (FORMAT.md section 8, step 3.5): a crash leftover like the missing END
// it stands for (DamageUnfinished, at the torn frame, Err saying so),
// not torn damage, and the segment's reservations and gaps are leftovers
// too. After recovery the log reads without damage. Before a sealed
// segment, which recovery never looks at, all of them are torn damage.
func TestTornTailIsALeftover(t *testing.T) {
	for i := range 4 {
		later, header := i%2 == 1, i/2 == 1
		t.Run(fmt.Sprintf("later sealed %v, header lost %v", later, header), func(t *testing.T) {
			dir := t.TempDir()
			b, want, reserved, gap := leftoverSeg(t, dir)
			at := b.off
			b.add(baseTS+3, []byte("torn by the power cut"))
			if header {
				clear(b.img[at : at+segment.FrameHeaderSize]) // its commit word's page lost
			} else {
				clear(b.img[at+segment.FrameHeaderSize : b.off]) // its payload's
			}
			path := b.write(t, dir)
			three := newSeg(3)
			if later {
				want = append(want, three.add(baseTS+4, []byte("sealed after it")))
				three.seal(t, [segment.DigestSize]byte{})
			}
			three.write(t, dir)
			kinds := []reader.DamageKind{reader.DamageReserved, reader.DamageGap, reader.DamageUnfinished}
			if later {
				kinds = []reader.DamageKind{reader.DamageTorn, reader.DamageTorn, reader.DamageTorn}
			}
			wantDmg := []string{
				fmt.Sprintf("%v@%d", kinds[0], reserved),
				fmt.Sprintf("%v@%d", kinds[1], gap),
				fmt.Sprintf("%v@%d", kinds[2], at),
			}
			checkLeftovers(t, "no writer", dir, path, want, wantDmg, later)
			_, dmg := readAll(t, dir, reader.Options{})
			if d := dmg[len(dmg)-1]; d.Err == nil || !strings.Contains(d.Error(), "torn tail: a committed frame an interrupted flush tore; nothing intact follows it") ||
				!strings.HasPrefix(d.Error(), fmt.Sprintf("%s: offset %d: ", path, at)) {
				t.Errorf("the torn tail's damage says %q", d.Error())
			}
			if later {
				return
			}
			w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st := w.Recovered(); st.RecoveredSegments != 1 || st.TornTails != 1 || st.DamagedSegments != 0 {
				t.Fatalf("recovery %+v; want segment 2 sealed, its torn tail under a PAD", st)
			}
			checkLeftovers(t, "after recovery", dir, path, want, nil, false)
		})
	}
}
