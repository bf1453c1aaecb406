package segment

import "golang.org/x/sys/cpu"

// crc3 runs three raw (not inverted) CRC32C states over n0 bytes at p0,
// n1 at p1 and n2 at p2.
//
//go:noescape
func crc3(r *[3]uint32, p0 *byte, n0 int, p1 *byte, n1 int, p2 *byte, n2 int)

var haveCRC3 = cpu.X86.HasSSE42
