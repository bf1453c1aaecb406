package segment

import "golang.org/x/sys/cpu"

// crc3 updates the three CRC32Cs in r with the three byte slices in p, as
// crc32.Update would each (the inversions included). Two pointer arguments
// keep the call cheap enough for frameCRCs3 to inline.
//
//go:noescape
func crc3(r *[3]uint32, p *[3][]byte)

var haveCRC3 = cpu.X86.HasSSE42
