package segment

import "golang.org/x/sys/cpu"

// crc3 updates the three CRC32Cs in r with the three byte slices in p, as
// crc32.Update would each (the inversions included). ScanDataIn calls it
// once per three frames, so its arguments are two pointers.
//
//go:noescape
func crc3(r *[3]uint32, p *[3][]byte)

var haveCRC3 = cpu.X86.HasSSE42
