package segment

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
	c := *covered
	if n == 2 {
		c[2] = c[0] // a missing third stream repeats the first (its result unused)
	}
	out = [3]uint32{seed ^ uint32(offs[0]), seed ^ uint32(offs[1]), seed ^ uint32(offs[2])}
	crc3(&out, &c)
	return out
}
