package segment

import (
	"math/rand/v2"
	"testing"
)

// TestFrameCRCs: the interleaved checksums equal FrameCRC for one, two
// and three buffers of any lengths (equal, unequal, shorter than a word,
// empty) at any alignment.
func TestFrameCRCs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<16)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	lens := []int{0, 1, 7, 8, 9, 16, 100, 115, 120, 4095, 9000}
	for trial := range 3000 {
		n := 1 + trial%3
		seed := r.Uint32()
		var offs [3]int64
		var cov [3][]byte
		for i := range n {
			l := lens[r.IntN(len(lens))]
			if trial%4 == 0 {
				l = lens[trial/4%len(lens)] // all the same length
			}
			at := r.IntN(len(buf) - l)
			offs[i], cov[i] = r.Int64(), buf[at:at+l]
		}
		got := frameCRCs(seed, &offs, &cov, n)
		for i := range n {
			if want := FrameCRC(seed, offs[i], cov[i]); got[i] != want {
				t.Fatalf("trial %d: buffer %d of %d (%d bytes): %08x, want %08x", trial, i, n, len(cov[i]), got[i], want)
			}
		}
	}
}

func BenchmarkFrameCRCs(b *testing.B) {
	buf := make([]byte, 3*115)
	cov := [3][]byte{buf[:115], buf[115:230], buf[230:]}
	offs := [3]int64{64, 192, 320}
	b.Run("one-by-one", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			for i := range 3 {
				_ = FrameCRC(7, offs[i], cov[i])
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			_ = frameCRCs(7, &offs, &cov, 3)
		}
	})
}
