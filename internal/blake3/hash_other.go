//go:build !amd64

package blake3

// useAVX512 is always false off amd64; it exists so that tests can set it
// on every architecture.
var useAVX512 = false

func hashMany(in *[maxLanes][]byte, n, blocks int, counter uint64, inc bool, flags, start, end uint32, out *[maxLanes * 32]byte) {
	hashManyGeneric(in, n, blocks, counter, inc, flags, start, end, out)
}

// Accelerated reports whether this machine runs the AVX-512 kernel: never
// off amd64, where the portable code is several times slower than an
// optimised implementation, so callers that hash a lot should use one.
func Accelerated() bool { return false }
