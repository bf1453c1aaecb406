//go:build !amd64

package segment

const haveCRC3 = false

func crc3(r *[3]uint32, p *[3][]byte) {
	panic("unreachable")
}
