package speccheck

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCleanRoomWalksDamageAlike damages the segment files of a real log
// in memory, a few bytes at a time at random places (a flipped bit, a
// zeroed word, a forged claim, a copy of a frame from elsewhere), and
// holds pkg/segment's header, footer and walk to the clean-room decoder's,
// event by event: the resync rules of section 7 included; and, of an
// unsealed one, recovery's judgment (section 8, step 3).
func TestCleanRoomWalksDamageAlike(t *testing.T) {
	dir, _ := sharedLog(t)
	rng := rand.New(rand.NewPCG(3, 4))
	n := 0
	seen := map[string]int{}
	for _, sf := range segmentFiles(t, dir) {
		name, orig, seq := sf.name, sf.img, sf.seq
		var frames []int64 // frame starts, END's included
		for _, e := range checkSegment(seq, orig, nil, true, true).Events {
			frames = append(frames, e.Off)
		}
		for i := range 150 {
			img := append([]byte(nil), orig...)
			for range 1 + rng.IntN(3) {
				damage(rng, img, frames)
			}
			s := checkSegment(seq, img, nil, true, true)
			label := fmt.Sprintf("%s damage %d", name, i)
			compareImage(t, label, img, s)
			compareRefusal(t, label, img, seq, s) // an unsealed one's recovery
			// And from another start: a frame's end, or any offset.
			from := rng.Int64N(int64(len(img)))
			if rng.IntN(2) == 0 {
				from = frames[rng.IntN(len(frames))]
			}
			compareEvents(t, label, img, seq, from, s.Sealed, walkFrom(img, int64(len(img)), seq, from, s.Sealed))
			for _, e := range s.Events {
				seen[fmt.Sprintf("%s/%v", e.Kind, s.Sealed)]++
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no segment file to damage")
	}
	t.Logf("events: %v", seen)
}

// segFile is a segment file of a log (not an archive): its name, bytes
// and sequence number.
type segFile struct {
	name string
	img  []byte
	seq  uint64
}

// segmentFiles reads the segment files of the log in dir.
func segmentFiles(t *testing.T, dir string) []segFile {
	t.Helper()
	var out []segFile
	for _, name := range logFiles(t, dir) {
		if strings.HasSuffix(name, ".zst") {
			continue
		}
		img, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segFile{name, img, mustSeq(t, name)})
	}
	return out
}

func mustSeq(t *testing.T, name string) uint64 {
	t.Helper()
	var seq uint64
	if _, err := fmt.Sscanf(name, "%020d", &seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// damage changes img at one random place, most often in the record area,
// or at one of the frames that start at the given offsets.
func damage(rng *rand.Rand, img []byte, frames []int64) {
	size := int64(len(img))
	rl, dl := recordLimit(size), dataLimit(size)
	if len(frames) > 0 && rng.IntN(2) == 0 {
		i := rng.IntN(len(frames))
		f := frames[i]
		next := rl
		if i+1 < len(frames) {
			next = frames[i+1]
		}
		claim := func(ext int64) { le.PutUint32(img[f:], uint32(-int32(ext))) }
		switch rng.IntN(6) {
		case 0: // the frame zeroed whole: a gap before the next
			clear(img[f:next])
		case 1: // a claim over frames, to one of their starts
			claim(frames[i+rng.IntN(len(frames)-i)] - f)
		case 2: // a claim to DataLimit, or an END claim
			claim([]int64{dl, rl, rl + 8, dl + 8}[rng.IntN(4)] - f)
		case 3: // a claim of a length that is not a multiple of 8
			claim(next - f - int64(rng.IntN(8)))
		case 4: // the footer's magic lost: read unsealed (Quiescent)
			clear(img[size-footerSize : size-footerSize+8])
		case 5: // the frames from here zeroed: a tail
			clear(img[f:rl])
		}
		return
	}
	off := headerSize + rng.Int64N(size-headerSize-footerSize)
	if rng.IntN(10) == 0 {
		off = rng.Int64N(size)
	}
	word := off &^ 7
	switch rng.IntN(6) {
	case 0, 1:
		img[off] ^= 1 << rng.IntN(8)
	case 2: // a zeroed word
		clear(img[word : word+8])
	case 3: // a forged claim
		if word+4 <= size {
			le.PutUint32(img[word:], uint32(-int32(rng.IntN(1<<rng.IntN(17)))))
		}
	case 4: // a forged length
		if word+4 <= size {
			le.PutUint32(img[word:], uint32(rng.IntN(1<<rng.IntN(17))))
		}
	case 5: // a zeroed run, as a lost page
		end := min(word+8*rng.Int64N(512), size)
		clear(img[word:end])
	}
}
