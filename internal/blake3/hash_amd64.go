package blake3

import "golang.org/x/sys/cpu"

// useAVX512 selects the AVX-512 kernel. Every instruction the kernel uses
// belongs to AVX-512F, and cpu.X86.HasAVX512F also requires that the OS
// saves the ZMM state. Tests clear it to exercise the portable path.
var useAVX512 = cpu.X86.HasAVX512F

// minKernelLanes is the smallest lane count worth a kernel call: the
// kernel always does the work of sixteen lanes (about 150 ns per block
// here), and the portable code compresses a lone block about as fast.
const minKernelLanes = 2

// hashManyAVX512 is hashManyGeneric for all sixteen lanes at once; every
// lane of in must hold blocks*64 readable bytes (with blocks 0 it writes
// nothing).
//
//go:noescape
func hashManyAVX512(in *[maxLanes][]byte, blocks int, counter uint64, inc uint32, flags, start, end uint32, out *[maxLanes * 32]byte)

func hashMany(in *[maxLanes][]byte, n, blocks int, counter uint64, inc bool, flags, start, end uint32, out *[maxLanes * 32]byte) {
	if !useAVX512 || n < minKernelLanes {
		hashManyGeneric(in, n, blocks, counter, inc, flags, start, end, out)
		return
	}
	// Unused lanes repeat lane 0 so that the kernel reads only valid
	// memory; their results land in the unused part of out.
	for i := n; i < maxLanes; i++ {
		in[i] = in[0]
	}
	var i uint32
	if inc {
		i = 1
	}
	hashManyAVX512(in, blocks, counter, i, flags, start, end, out)
}

// Accelerated reports whether this machine runs the AVX-512 kernel. Without
// it the portable code is several times slower than an AVX2 implementation,
// so callers that hash a lot should use one of those instead.
func Accelerated() bool { return useAVX512 }
