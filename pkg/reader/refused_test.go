package reader_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// refusedCases damage a dead writer's segment 2 (a record, a
// reservation, a zero gap, a record, no END) so that recovery refuses to
// seal it (FORMAT.md section 8, steps 3.1, 3.2, 3.4), or not at all. Each
// adds to the segment after its records and returns the records the
// reader must return from there, the damage it must report before the
// leftovers and after them ("kind@offset"), and whether it grows the
// file past its header's size.
var refusedCases = []struct {
	name   string
	damage func(b *segBuilder) (recs []rec, before, after []string, grow bool)
}{
	{"healthy", func(*segBuilder) ([]rec, []string, []string, bool) { return nil, nil, nil, false }},
	{"torn frame after the leftovers", func(b *segBuilder) ([]rec, []string, []string, bool) {
		at := b.off
		b.add(baseTS+3, []byte("torn after the leftovers"))
		b.img[at+segment.FrameHeaderSize+2] ^= 0xff // its CRC fails
		r := b.add(baseTS+4, []byte("after the torn one"))
		return []rec{r}, nil, []string{fmt.Sprint("torn@", at)}, false
	}},
	{"END claim with a byte behind its header", func(b *segBuilder) ([]rec, []string, []string, bool) {
		at := b.reserve(int(segment.RecordLimit(segSize) - b.off - segment.FrameHeaderSize))
		b.img[at+segment.FrameHeaderSize+8] = 'x'
		return nil, nil, []string{fmt.Sprint("torn@", at)}, false
	}},
	{"header destroyed", func(b *segBuilder) ([]rec, []string, []string, bool) {
		copy(b.img, "NOTASEGM") // its records are still read, by the file name's sequence
		return nil, []string{"segment@0"}, nil, false
	}},
	{"file longer than its header says", func(*segBuilder) ([]rec, []string, []string, bool) {
		return nil, []string{fmt.Sprint("segment@", segSize)}, nil, true
	}},
}

// A dead writer's segment that writer.Open's recovery leaves unsealed
// holds no crash leftovers: its reservations, zero gaps and missing END
// are never padded or finished, and verify calls them fatal (unfinished,
// missing-end). The reader reported them as DamageReserved, DamageGap and
// DamageUnfinished, whose CrashLeftover says recovery pads them, those
// before a torn frame or a damaged END claim too, as it meets them first.
// They are torn damage, before recovery and after it (the writer alive,
// appending to segment 3, made ahead by the dead one); in a segment
// recovery seals they are still leftovers.
func TestLeftoversOfASegmentRecoveryRefuses(t *testing.T) {
	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, want, reserved, gap := leftoverSeg(t, dir)
			recs, before, after, grow := tc.damage(b)
			want = append(want, recs...)
			refused := tc.name != "healthy"
			kind := func(k reader.DamageKind) string {
				if refused {
					k = reader.DamageTorn
				}
				return k.String()
			}
			wantDmg := slices.Concat(before, []string{
				fmt.Sprintf("%s@%d", kind(reader.DamageReserved), reserved),
				fmt.Sprintf("%s@%d", kind(reader.DamageGap), gap),
			}, after)
			if b.off < segment.RecordLimit(segSize) { // no END claim
				wantDmg = append(wantDmg, fmt.Sprintf("%s@%d", kind(reader.DamageUnfinished), b.off))
			}
			path := b.write(t, dir)
			written := b.img
			if grow {
				written = append(b.img, make([]byte, 4096)...)
				if err := os.WriteFile(path, written, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			newSeg(3).write(t, dir)
			check := func(step string) {
				t.Helper()
				checkLeftovers(t, step, dir, path, want, wantDmg, refused)
			}
			check("no writer")
			if !refused {
				return
			}
			w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st := w.Recovered(); st.DamagedSegments != 1 || st.RecoveredSegments != 0 {
				t.Fatalf("recovery %+v; want segment 2 left as it is", st)
			}
			if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, written) {
				t.Fatalf("segment 2 changed by recovery (%v); want it left as it is, unsealed", err)
			}
			check("the writer that recovered it alive")
		})
	}
}

// leftoverSeg writes a sealed segment 1 into dir and returns segment 2,
// not written, as a dead writer left it: a record, a reservation, a zero
// gap, a record, no END. It returns the records the reader must return,
// and where the reservation and the gap are.
func leftoverSeg(t *testing.T, dir string) (b *segBuilder, want []rec, reserved, gap int64) {
	t.Helper()
	one := newSeg(1)
	want = []rec{one.add(baseTS, []byte("sealed"))}
	one.seal(t, [segment.DigestSize]byte{})
	one.write(t, dir)
	b = newSeg(2)
	want = append(want, b.add(baseTS+1, []byte("before the reservation")))
	reserved = b.reserve(40)
	gap = b.off
	b.off += segment.FrameSize(24) // zeros: a claim never stored
	want = append(want, b.add(baseTS+2, []byte("after the gap")))
	return b, want, reserved, gap
}

// checkLeftovers reads dir and checks that it returns want and reports
// wantDmg ("kind@offset"), all in the file at path, crash leftovers
// unless refused, and torn damage wrapping segment.ErrCorrupt.
func checkLeftovers(t *testing.T, step, dir, path string, want []rec, wantDmg []string, refused bool) {
	t.Helper()
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	var kinds []string
	for _, d := range dmg {
		kinds = append(kinds, fmt.Sprintf("%v@%d", d.Kind, d.Offset))
		if d.Path != path || d.Kind.CrashLeftover() == refused ||
			d.Kind == reader.DamageTorn && !errors.Is(d.Err, segment.ErrCorrupt) {
			t.Errorf("%s: %v (%v)", step, &d, d.Kind)
		}
	}
	if !slices.Equal(kinds, wantDmg) {
		t.Errorf("%s: damage %q; want %q", step, kinds, wantDmg)
	}
}
