package writer

import (
	"sync/atomic"

	"github.com/auditseg/auditseg/pkg/segment"
)

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
// a 2 MiB page or more of new records each, judged by the records and
// flushes (of the interval, or Sync calls) seen last:
//
//   - never under SyncAlways (a flush per group commit);
//   - by the last segment to fill, once one has: at most one flush per
//     2 MiB of it while it was active;
//   - before that, by the active segment so far (the preparer maps the
//     second segment once the first holds 256 KiB, see yieldEvery);
//   - with nothing appended yet (the first segment, at Open): under
//     SyncNone, which flushes only when Sync is called, yes; under
//     SyncInterval no, since it flushes whatever the rate.
//
// The decision is made when a segment is mapped: a writer whose flushes
// grow frequent keeps the 2 MiB pages of the segment it is filling and of
// the one prepared after it.

// hugePage is the size of the huge pages segment.MapFile asks for.
const hugePage = 2 << 20

// pagePolicy remembers the last segment that filled.
type pagePolicy struct {
	known   atomic.Bool  // a segment has filled (rotated out) in this writer
	bytes   atomic.Int64 // its bytes of frames
	flushes atomic.Int64 // the flushes it took while it was active
}

// rotated records s as it stops being the active segment.
func (p *pagePolicy) rotated(s *seg) {
	p.bytes.Store(min(s.tail.Load(), s.dataLimit) - segment.HeaderSize)
	p.flushes.Store(s.flushes.Load())
	p.known.Store(true)
}

// huge reports whether the next segment to be mapped should use 2 MiB
// pages under mode, active being the segment now filling (nil at Open).
func (p *pagePolicy) huge(mode SyncMode, active *seg) bool {
	if mode == SyncAlways {
		return false
	}
	if p.known.Load() {
		return p.flushes.Load()*hugePage <= p.bytes.Load()
	}
	if active != nil {
		if n := active.tail.Load() - segment.HeaderSize; n > 0 {
			return active.flushes.Load()*hugePage <= n
		}
	}
	return mode == SyncNone
}
