package speccheck

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

var states = map[segment.FrameState]slotState{
	segment.Unwritten: slotUnwritten, segment.Reserved: slotReserved,
	segment.Committed: slotCommitted, segment.Torn: slotTorn,
}

// TestCleanRoomDecodesSlotsAlike holds segment.DecodeFrame to the
// clean-room decoder of sections 4.3 and 4.4 at every 8-aligned offset of
// the record area of real segments, damaged at random places too: the
// same state, the same extent, the same fields.
func TestCleanRoomDecodesSlotsAlike(t *testing.T) {
	dir, _ := sharedLog(t)
	unarchive(t, dir)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range logFiles(t, dir) {
		if strings.HasSuffix(name, ".zst") {
			continue
		}
		orig := mustRead(t, filepath.Join(dir, name))
		seq := mustSeq(t, name)
		var frames []int64
		for _, e := range checkSegment(seq, orig, nil, true, true).Events {
			frames = append(frames, e.Off)
		}
		for round := range 4 {
			img := append([]byte(nil), orig...)
			for range round * 20 {
				damage(rng, img, frames)
			}
			size := int64(len(img))
			offs := []int64{0, 8, 56, 60, 65, 68, 71, recordLimit(size) - 16, recordLimit(size) - 20, recordLimit(size), size - 8}
			for off := int64(headerSize); off+frameHdrSize <= recordLimit(size); off += 8 {
				offs = append(offs, off)
			}
			for _, off := range offs {
				st, f, ext, _ := decodeSlot(img, size, seq, off)
				df := segment.DecodeFrame(img, seq, off)
				if states[df.State] != st {
					t.Fatalf("%s round %d at %d: DecodeFrame %v, clean-room state %d", name, round, off, df.State, st)
				}
				switch st {
				case slotReserved:
					if df.Extent != ext {
						t.Errorf("%s at %d: reserved extent %d, clean-room %d", name, off, df.Extent, ext)
					}
				case slotCommitted:
					if df.Extent != align(int64(f.Length)) || df.Type != f.Type || df.Time != f.Time || df.CRC != f.CRC || df.Length != f.Length {
						t.Errorf("%s at %d: %+v, clean-room %+v", name, off, df, f)
					}
				}
			}
		}
	}
}
