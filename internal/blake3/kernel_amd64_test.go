package blake3

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestKernelMatchesGeneric compares the AVX-512 kernel with the portable
// code lane by lane, for every lane count, chunk-sized and parent-sized
// inputs, and counters whose low word overflows across the lanes.
func TestKernelMatchesGeneric(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512F on this machine")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	type mode struct {
		name              string
		blocks            int
		inc               bool
		flags, start, end uint32
	}
	modes := []mode{
		{"chunk16", 16, true, 0, flagChunkStart, flagChunkEnd},
		{"chunk1", 1, true, 0, flagChunkStart, flagChunkEnd},
		{"parent", 1, false, flagParent, 0, 0},
		{"parent16", 16, false, flagParent, 0, 0},
	}
	counters := []uint64{0, 5, 1<<32 - 7, 1<<40 + 3, 1<<64 - 1}
	for _, md := range modes {
		for n := 1; n <= maxLanes; n++ {
			for _, ctr := range counters {
				// Separate allocations per lane, so that lanes are not
				// simply consecutive slices of one buffer.
				var in, in2 [maxLanes][]byte
				for i := 0; i < n; i++ {
					in[i] = make([]byte, md.blocks*BlockSize)
					for j := range in[i] {
						in[i][j] = byte(rng.Uint32())
					}
					in2[i] = in[i]
				}
				var want, got [maxLanes * 32]byte
				hashManyGeneric(&in, n, md.blocks, ctr, md.inc, md.flags, md.start, md.end, &want)
				var inc uint32
				if md.inc {
					inc = 1
				}
				for i := n; i < maxLanes; i++ {
					in2[i] = in2[0]
				}
				hashManyAVX512(&in2, md.blocks, ctr, inc, md.flags, md.start, md.end, &got)
				if !bytes.Equal(got[:32*n], want[:32*n]) {
					for i := 0; i < n; i++ {
						if !bytes.Equal(got[32*i:32*i+32], want[32*i:32*i+32]) {
							t.Errorf("%s n=%d ctr=%#x lane %d:\n got %x\nwant %x", md.name, n, ctr, i, got[32*i:32*i+32], want[32*i:32*i+32])
						}
					}
				}
			}
		}
	}
}

// TestKernelChunkCV checks the kernel against the chunk state path, which
// is independent of hashManyGeneric.
func TestKernelChunkCV(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512F on this machine")
	}
	p := make([]byte, maxLanes*chunkLen)
	for i := range p {
		p[i] = byte(i * 7)
	}
	var in [maxLanes][]byte
	for i := range in {
		in[i] = p[i*chunkLen : (i+1)*chunkLen]
	}
	var got [maxLanes * 32]byte
	hashManyAVX512(&in, chunkLen/BlockSize, 100, 1, 0, flagChunkStart, flagChunkEnd, &got)
	for i := 0; i < maxLanes; i++ {
		h := Hasher{counter: 100 + uint64(i)}
		h.bufLen = copy(h.buf[:], in[i])
		nd := h.chunkNode()
		want := nd.chainingValue()
		if !bytes.Equal(got[32*i:32*i+32], want[:]) {
			t.Errorf("lane %d: got %x want %x", i, got[32*i:32*i+32], want)
		}
	}
}
