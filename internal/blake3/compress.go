package blake3

import (
	"encoding/binary"
	"math/bits"
)

// Domain flags from the BLAKE3 specification. Keyed hashing and key
// derivation are out of scope, so their flags are not defined here.
const (
	flagChunkStart = 1 << 0
	flagChunkEnd   = 1 << 1
	flagParent     = 1 << 2
	flagRoot       = 1 << 3
)

// iv is the initial chaining value of every chunk and the key of every
// parent node in unkeyed mode (the SHA-256 initial hash words).
var iv = [8]uint32{
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
}

func g(a, b, c, d, x, y uint32) (uint32, uint32, uint32, uint32) {
	a += b + x
	d = bits.RotateLeft32(d^a, -16)
	c += d
	b = bits.RotateLeft32(b^c, -12)
	a += b + y
	d = bits.RotateLeft32(d^a, -8)
	c += d
	b = bits.RotateLeft32(b^c, -7)
	return a, b, c, d
}

// compress is the BLAKE3 compression function truncated to the chaining
// value: only 32-byte outputs are produced, so the upper half of the
// output (used for extended output) is never needed.
func compress(cv *[8]uint32, m *[16]uint32, counter uint64, blockLen, flags uint32) [8]uint32 {
	v0, v1, v2, v3, v4, v5, v6, v7 := cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7]
	v8, v9, v10, v11 := iv[0], iv[1], iv[2], iv[3]
	v12, v13, v14, v15 := uint32(counter), uint32(counter>>32), blockLen, flags
	m0, m1, m2, m3, m4, m5, m6, m7 := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
	m8, m9, m10, m11, m12, m13, m14, m15 := m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
	for r := 0; ; r++ {
		v0, v4, v8, v12 = g(v0, v4, v8, v12, m0, m1)
		v1, v5, v9, v13 = g(v1, v5, v9, v13, m2, m3)
		v2, v6, v10, v14 = g(v2, v6, v10, v14, m4, m5)
		v3, v7, v11, v15 = g(v3, v7, v11, v15, m6, m7)
		v0, v5, v10, v15 = g(v0, v5, v10, v15, m8, m9)
		v1, v6, v11, v12 = g(v1, v6, v11, v12, m10, m11)
		v2, v7, v8, v13 = g(v2, v7, v8, v13, m12, m13)
		v3, v4, v9, v14 = g(v3, v4, v9, v14, m14, m15)
		if r == 6 {
			break
		}
		// The specification permutes the message words between rounds
		// with the fixed permutation 2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8.
		m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 =
			m2, m6, m3, m10, m7, m0, m4, m13, m1, m11, m12, m5, m9, m14, m15, m8
	}
	return [8]uint32{v0 ^ v8, v1 ^ v9, v2 ^ v10, v3 ^ v11, v4 ^ v12, v5 ^ v13, v6 ^ v14, v7 ^ v15}
}

func blockWords(b []byte) (m [16]uint32) {
	_ = b[BlockSize-1]
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return m
}

func cvBytes(cv *[8]uint32) (out [32]byte) {
	for i, w := range cv {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// parentCV compresses two child chaining values, stored as bytes, into
// their parent's chaining value.
func parentCV(left, right *[32]byte) [32]byte {
	n := parentNode(left, right)
	return n.chainingValue()
}

// node holds everything needed to compress a node's last block, so that
// the final node can be compressed either as an inner node or, with the
// ROOT flag, as the root.
type node struct {
	cv       [8]uint32
	m        [16]uint32
	counter  uint64
	blockLen uint32
	flags    uint32
}

func parentNode(left, right *[32]byte) node {
	n := node{cv: iv, blockLen: BlockSize, flags: flagParent}
	for i := 0; i < 8; i++ {
		n.m[i] = binary.LittleEndian.Uint32(left[4*i:])
		n.m[8+i] = binary.LittleEndian.Uint32(right[4*i:])
	}
	return n
}

func (n *node) chainingValue() [32]byte {
	cv := compress(&n.cv, &n.m, n.counter, n.blockLen, n.flags)
	return cvBytes(&cv)
}

// rootHash compresses n as the root. The counter is the output block
// index, always 0 here because only the first 32 bytes are produced.
func (n *node) rootHash() [32]byte {
	cv := compress(&n.cv, &n.m, 0, n.blockLen, n.flags|flagRoot)
	return cvBytes(&cv)
}

// hashManyGeneric is the portable counterpart of the AVX-512 kernel, with
// the same contract: lanes 0..n-1 of in each hold blocks whole blocks;
// lane i uses counter+i when inc is set, else counter; the first block
// of each lane gets flags|start and the last flags|end; the chaining
// value of lane i goes to out[32*i:].
func hashManyGeneric(in *[maxLanes][]byte, n, blocks int, counter uint64, inc bool, flags, start, end uint32, out *[maxLanes * 32]byte) {
	for i := 0; i < n; i++ {
		ctr := counter
		if inc {
			ctr += uint64(i)
		}
		cv := iv
		p := in[i][:blocks*BlockSize]
		for b := 0; b < blocks; b++ {
			f := flags
			if b == 0 {
				f |= start
			}
			if b == blocks-1 {
				f |= end
			}
			m := blockWords(p[b*BlockSize:])
			cv = compress(&cv, &m, ctr, BlockSize, f)
		}
		for j, w := range cv {
			binary.LittleEndian.PutUint32(out[32*i+4*j:], w)
		}
	}
}
