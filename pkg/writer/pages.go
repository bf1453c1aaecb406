package writer

import "sync/atomic"

// Page size of the segment mappings.
//
// A segment mapped in 2 MiB pages (segment.MapFile with huge) spares the
// preparer a first-touch fault per 4 KiB page: on the VMs we measured
// that fault costs ~4 µs (a hypervisor entry per page), 66 ms for a
// 64 MiB segment against ~1 ms in 2 MiB pages. But the kernel keeps a
// page's dirtiness as a whole, so a flush writes every byte of each 2 MiB
// page a store has touched since the last one. Flushing after every few
// records then writes 2 MiB each time: under SyncAlways, 2000 appends of
// 100 bytes wrote 4.2 GB to the disk (2 MiB each) and ran at 569-969 a
// second, against 8.2 MB and 2357-2566 a second in 4 KiB pages; a slow
// log under SyncInterval would rewrite 2 MiB every interval. So a segment
// is mapped in 2 MiB pages only where its flushes can be expected to find
// a 2 MiB page or more of new records each:
//
//   - never under SyncAlways (a flush per group commit);
//   - otherwise if the last segment to fill took at most one flush (of
//     the interval, or a Sync call) per 2 MiB while it was active;
//   - before any segment has filled (the first two of a writer): under
//     SyncNone, which flushes only when Sync is called, yes; under
//     SyncInterval no, since it flushes whatever the rate.
//
// The decision is made when a segment is mapped: a writer whose flushes
// grow frequent keeps the 2 MiB pages of the segment it is filling and of
// the one prepared after it.

// hugePage is the size of the huge pages segment.MapFile asks for.
const hugePage = 2 << 20

// pagePolicy remembers the flushes of the last segment that filled.
type pagePolicy struct {
	known   atomic.Bool  // a segment has filled (rotated out) in this writer
	flushes atomic.Int64 // the flushes it took while it was active
}

// rotated records s's flushes as it stops being the active segment.
func (p *pagePolicy) rotated(s *seg) {
	p.flushes.Store(s.flushes.Load())
	p.known.Store(true)
}

// huge reports whether the next segment to be mapped, of size bytes,
// should use 2 MiB pages under mode.
func (p *pagePolicy) huge(mode SyncMode, size int64) bool {
	switch {
	case mode == SyncAlways:
		return false
	case !p.known.Load():
		return mode == SyncNone
	}
	return p.flushes.Load() <= max(size/hugePage, 1)
}
