package segment

import "unsafe"

// frameCRCs computes FrameCRC(seed, offs[i], covered[i]) for i < n (n ≤
// 3), the three checksums interleaved over the bytes they have in common.
// A bulk read of short records spends about a third of its CPU on CRCs
// otherwise, each one a single chain of dependent instructions.
func frameCRCs(seed uint32, offs *[3]int64, covered *[3][]byte, n int) [3]uint32 {
	var out [3]uint32
	if !haveCRC3 || n < 2 {
		for i := range n {
			out[i] = FrameCRC(seed, offs[i], covered[i])
		}
		return out
	}
	// A missing third stream repeats the first (its result unused).
	p2, o2 := covered[0], offs[0]
	if n == 3 {
		p2, o2 = covered[2], offs[2]
	}
	out = [3]uint32{^(seed ^ uint32(offs[0])), ^(seed ^ uint32(offs[1])), ^(seed ^ uint32(o2))}
	crc3(&out, unsafe.SliceData(covered[0]), len(covered[0]), unsafe.SliceData(covered[1]), len(covered[1]), unsafe.SliceData(p2), len(p2))
	out[0], out[1], out[2] = ^out[0], ^out[1], ^out[2]
	return out
}
