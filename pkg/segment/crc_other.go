//go:build !amd64

package segment

const haveCRC3 = false

func crc3(r *[3]uint32, p0 *byte, n0 int, p1 *byte, n1 int, p2 *byte, n2 int) {
	panic("unreachable")
}
