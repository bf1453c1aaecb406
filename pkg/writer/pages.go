package writer

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
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
//     second segment once the first holds 256 KiB, see yieldEvery): at
//     most one flush per 2 MiB of it, counting under SyncInterval the
//     intervals since Open that the flushes to come will take too;
//   - with nothing appended yet (the first segment, at Open): under
//     SyncNone, which flushes only when Sync is called, yes; under
//     SyncInterval no, since it flushes whatever the rate.
//
// The decision is made when a segment is mapped: a writer whose flushes
// grow frequent keeps the 2 MiB pages of the segment it is filling and of
// the one prepared after it. One exception: the first segment of a
// SyncInterval writer is populated only for its first 2 MiB, in 4 KiB
// pages; the rest is advised 2 MiB pages but left unpopulated until the
// segment has shown its rate (settle, before the second segment is
// mapped), and goes back to 4 KiB pages if the rate is low. Populated
// whole in 4 KiB pages, a fast writer's first segment cost ~0.1 s of
// first-touch faults at every Open, and as much again in TLB flushes each
// time its pages were written back (one per 4 KiB page on the VMs we
// measured). The advice comes first because a fast writer passes 2 MiB
// within milliseconds of the 256 KiB that wake the preparer; pages it
// faults in before then would be 4 KiB ones otherwise.

// hugePage is the size of the huge pages segment.MapFile asks for.
const hugePage = 2 << 20

// pagePolicy remembers the last segment that filled.
type pagePolicy struct {
	interval time.Duration // Options.SyncInterval
	opened   time.Time     // when the writer opened: the first segment's start

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
		// No segment has filled, so active is the first, active since Open.
		if n := active.tail.Load() - segment.HeaderSize; n > 0 {
			flushes := float64(active.flushes.Load())
			if mode == SyncInterval && p.interval > 0 {
				flushes = max(flushes, float64(time.Since(p.opened))/float64(p.interval))
			}
			return flushes*hugePage <= float64(n)
		}
	}
	return mode == SyncNone
}

// populate pre-faults a new segment: the whole of it in 4 KiB pages and
// at Open, the first 2 MiB otherwise, for fill to go on with (the first
// segment of a SyncInterval writer with no history: see above). Its error
// is prefault's: the file was truncated under it.
func (w *Writer) populate(s *seg, first bool) error {
	size := int64(len(s.data))
	undecided := first && w.opts.Sync == SyncInterval && !w.pages.known.Load() && size >= 4*hugePage
	end := size
	if undecided || !first && s.huge && size > hugePage {
		end = hugePage
	}
	if err := s.prefault(0, end); err != nil {
		return err
	}
	if undecided {
		_ = unix.Madvise(s.data[hugePage:], unix.MADV_HUGEPAGE) // an optimisation only
	}
	s.populated, s.undecided = end, undecided
	return nil
}

// settle decides the page size of the first segment of a SyncInterval
// writer, back to 4 KiB pages if its rate so far is low, and populates
// whatever is left of s (fill, whose error it returns).
func (w *Writer) settle(s *seg) error {
	if s.undecided {
		s.undecided = false
		if !w.pages.huge(w.opts.Sync, s) {
			s.mapMu.Lock()
			if !s.unmapped {
				_ = unix.Madvise(s.data[s.populated:], unix.MADV_NOHUGEPAGE) // an optimisation only
			}
			s.mapMu.Unlock()
		}
	}
	return w.fill(s, false, nil)
}

// fill populates s from where populate stopped, 2 MiB at a time, until it
// is done, the writer closes, or stop (if not nil) says so. A private
// segment (not yet published to appenders) is pre-faulted as populate
// does; in a published one appenders may be storing already, so fill only
// asks the kernel to populate (contents unchanged), under mapMu, which
// keeps the sealer from unmapping s meanwhile and lets flushes in between,
// and skips what appenders have reached.
//
// It fails, naming the file and the offset, where the file was truncated
// under it: prefault's error, or populateWrite's.
func (w *Writer) fill(s *seg, private bool, stop func() bool) error {
	size := int64(len(s.data))
	for s.populated < size {
		select {
		case <-w.done:
			return nil
		default:
		}
		if stop != nil && stop() {
			return nil
		}
		w.bgSteps.Add(1)
		off := s.populated
		end := min(off+hugePage, size)
		s.mapMu.Lock()
		if s.unmapped {
			s.mapMu.Unlock()
			return nil
		}
		var err error
		switch {
		case private:
			err = s.prefault(off, end)
		case end > s.tail.Load():
			err = s.populateWrite(off, end)
		}
		s.mapMu.Unlock()
		if err != nil {
			return err
		}
		s.populated = end
	}
	return nil
}

// populateWrite asks the kernel to populate [off, end) of s for writing,
// contents unchanged. Where the file no longer has a page of the range
// (truncated under the writer) the call fails with EFAULT instead of
// raising SIGBUS (Linux 6.18, ext4 and tmpfs): that is a *ChangedError
// at the file's end now, which the call does not report itself. Any other
// failure (EINVAL before Linux 5.14, ENOMEM) only loses the optimisation.
func (s *seg) populateWrite(off, end int64) error {
	err := unix.Madvise(s.data[off:end], unix.MADV_POPULATE_WRITE)
	if !errors.Is(err, unix.EFAULT) {
		return nil
	}
	at := off
	if st, serr := s.f.Stat(); serr == nil && st.Size() > off && st.Size() < end {
		at = st.Size()
	}
	return segment.Changed(s.path, prefaulting, &segment.MappingFault{Off: at, Err: err})
}
