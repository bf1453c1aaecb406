package writer

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// seg is one mapped segment. Appenders touch only tail (atomic) and the
// read-only fields; everything else belongs to the background goroutines.
type seg struct {
	seq       uint64
	seed      uint32 // segment.FrameSeed(seq)
	path      string
	data      []byte // the mapping; valid until unmapped by the sealer
	dataLimit int64

	_    [64]byte // keep tail on its own cache line: every append writes it
	tail atomic.Int64
	_    [56]byte

	// next is the segment prepared to follow this one; set once.
	next atomic.Pointer[seg]
	// unused is set by Close on an active segment nothing was claimed in:
	// it is released, not sealed, and the next Open continues in it.
	unused atomic.Bool

	f *os.File

	// mapMu orders the flusher's msync against the sealer's unmap.
	mapMu    sync.Mutex
	unmapped bool
	// gone is unmapped for Reservation.Commit and Abort, which cannot
	// take mapMu: set, under mapMu, before the unmap.
	gone atomic.Bool
	// detached is set by Close, before it cuts the mapping off the file
	// (detach), for Reservation.Commit to check after its commit store.
	detached atomic.Bool
	sealErr  error // why sealing failed, if it did (under mapMu)
	synced   int64 // bytes from 0 known durable (under mapMu)
	// flushes counts the msyncs that wrote some of it (pages.go).
	flushes atomic.Int64
	// durable follows the commit words up to the first frame that was not
	// committed when the last msync began (under mapMu).
	durable segment.Tally

	tally  segment.Tally         // sealer-owned
	digest *segment.DigestStream // sealer-owned; started once the previous segment is sealed
	ahead  lookahead             // sealer-owned; past the tally, once the segment is full

	// How far populate and fill have gone (pages.go); whether it is mapped
	// in 2 MiB pages, or may be (undecided: the page size of the rest
	// waits for settle). Preparer-owned once the writer is open.
	populated int64
	huge      bool
	undecided bool
}

// full reports whether a claim has crossed the data limit: no append can
// land in this segment any more.
func (s *seg) full() bool { return s.tail.Load() > s.dataLimit }

// prepare creates, reserves, maps and pre-faults segment seq, the way every
// new segment is born: under a temporary name, header written and fsynced,
// then renamed and the directory fsynced, so a crash never leaves a
// half-made .seg file.
func (w *Writer) prepare(seq uint64) (*seg, error) {
	f, final, err := w.create(seq)
	if err != nil {
		return nil, err
	}
	s, err := w.mapNew(f, final, seq)
	if err != nil {
		w.dropUnmappable(final)
	}
	return s, err
}

// checkLock makes sure the lock still holds the directory at its path
// before a file is created there or, every lockCheckEvery, while the
// writer runs: a directory moved away fails the writer; a LOCK file
// removed or replaced is locked again, with a warning (segment.Lock.Check).
// The same warning is not repeated while the same note stands.
func (w *Writer) checkLock() error { return w.checkLockUndo(nil) }

// checkLockUndo is checkLock calling undo, if the lock is lost, before the
// writer fails: appenders see the failure only once undo is done.
func (w *Writer) checkLockUndo(undo func()) error {
	w.lockMu.Lock()
	defer w.lockMu.Unlock()
	note, err := w.lock.Check()
	if note != "" && note != w.lockNote {
		w.opts.Logger.Warn(note, "dir", w.dir)
	}
	w.lockNote = note
	if err != nil {
		if undo != nil {
			undo()
		}
		w.fail(err)
	}
	return err
}

// lockCheckEvery is how often the sealer checks the lock (checkLock).
const lockCheckEvery = time.Second

// create makes the file of segment seq, reserved, with its header, under
// its final name, durably; it does not map it. The preparer creates the
// file after the next segment ahead of time (see prepareLoop): its header
// fsync waits for a journal commit that queues behind the writeback of
// earlier segments (15–60 ms here), about as long as a writer takes to
// fill a segment.
func (w *Writer) create(seq uint64) (*os.File, string, error) {
	if err := w.checkLock(); err != nil {
		return nil, "", err
	}
	f, final, err := w.createFile(seq)
	// The directory may have been moved or removed since the check above:
	// the file then went to whatever directory has the path now (or a step
	// found no file). That is the writer's sticky failure, not a creation
	// to retry, and the file is taken back out of the stranger directory.
	if lerr := w.checkLockUndo(func() { w.uncreate(f, final) }); lerr != nil {
		return nil, "", lerr
	}
	return f, final, err
}

// uncreate removes the segment file create made at final, if final is
// still that file, and closes f. f may be nil.
func (w *Writer) uncreate(f *os.File, final string) {
	if f == nil {
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return
	}
	if now, err := os.Lstat(final); err == nil && os.SameFile(st, now) && os.Remove(final) == nil {
		_ = w.opts.FS.SyncDir(filepath.Dir(final))
	}
}

func (w *Writer) createFile(seq uint64) (*os.File, string, error) {
	fs, size := w.opts.FS, w.opts.SegmentSize
	final := filepath.Join(w.dir, segment.FileName(seq))
	tmp := final + segment.TempExt
	if _, err := os.Lstat(final); err == nil {
		return nil, "", fmt.Errorf("prepare %s: already exists", final)
	}
	f, err := fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, "", fmt.Errorf("prepare segment: create %s: %w", tmp, err)
	}
	fail := func(step string, err error) (*os.File, string, error) {
		f.Close()
		os.Remove(tmp)
		return nil, "", fmt.Errorf("prepare segment: %s %s: %w", step, tmp, err)
	}
	if err := fs.Fallocate(f, size); err != nil {
		return fail("fallocate", err)
	}
	var hdr [segment.HeaderSize]byte
	segment.Header{Seq: seq, Size: size, Created: time.Now().UnixNano()}.Encode(hdr[:])
	if _, err := writerAt(fs, f).WriteAt(hdr[:], 0); err != nil {
		return fail("write header of", err)
	}
	if err := fs.Fsync(f); err != nil {
		return fail("fsync", flushError{err})
	}
	if err := fs.Rename(tmp, final); err != nil {
		return fail("rename", err)
	}
	if err := fs.SyncDir(w.dir); err != nil {
		// The new name is not known to be durable and the file holds only
		// its header: remove it, or every retry would find it in the way.
		f.Close()
		os.Remove(final)
		return nil, "", fmt.Errorf("prepare segment: %w", segment.OpError("fsync directory", w.dir, flushError{err}))
	}
	return named(f, final), final, nil
}

// named returns f as a file called name. An os.File keeps the name it was
// opened under, and errors about it (its mapping, its footer's write, the
// writeback of it sealed) say that name: after the rename that would be a
// .tmp file that no longer exists. The descriptor is duplicated, since two
// os.Files must not own one. If it cannot be, f is kept: the name is only
// what errors say.
func named(f *os.File, name string) *os.File {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return f
	}
	f.Close()
	return os.NewFile(uintptr(fd), name)
}

// mapNew maps and pre-faults a segment file that create made. If it
// cannot be mapped or pre-faulted (truncated under it), it is unmapped
// and closed, and the caller removes it (dropUnmappable).
func (w *Writer) mapNew(f *os.File, final string, seq uint64) (*seg, error) {
	// The page cache of the file may hold folios of another size than
	// this mapping's: the small one the header's write left at offset 0,
	// around which the kernel cannot place a 2 MiB folio (touching the
	// segment then cost 8 ms instead of 1 ms on the VMs we measured), or
	// whatever a reader's reads asked for since create made the file
	// visible (this package's readers read it, or map it in 4 KiB pages,
	// but another program may map it in 2 MiB pages): a 2 MiB folio there
	// made every flush near the start of a segment mapped in 4 KiB pages
	// write 2 MiB. Only the header was written, and fsynced, so the pages
	// are clean: dropping them lets this mapping's page size decide, for
	// the price of reading one block back. (A reader still holding a
	// mapping of the file keeps its pages.)
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // advice only
	// The active segment, nil at Open.
	active := w.cur.Load()
	s, err := mapSegment(f, final, seq, w.opts.SegmentSize, w.pages.huge(w.opts.Sync, active))
	if err != nil {
		return nil, err
	}
	w.freeForNext()
	if err := w.populate(s, active == nil); err != nil {
		_ = s.release() // the caller removes the file
		return nil, err
	}
	s.tail.Store(segment.HeaderSize)
	return s, nil
}

// dropUnmappable removes a new segment file that could not be mapped or
// pre-faulted (it holds only its header, or less if it was truncated), or
// every retry would find it in the way. Any file created after it must be
// gone first: a crash in between would leave a hole in the numbering.
func (w *Writer) dropUnmappable(path string) {
	if os.Remove(path) == nil {
		_ = w.opts.FS.SyncDir(w.dir) // the name is gone either way
	}
}

// flushError marks a failed fsync. Like a failed msync it is sticky (the
// writer fails for good): after one, the kernel may report later flushes
// of the same pages as successful without having written them, so no
// durability could be claimed again. The file it concerned holds no record,
// but a device that fails an fsync is not trusted with the next one.
type flushError struct{ err error }

func (e flushError) Error() string { return e.err.Error() }
func (e flushError) Unwrap() error { return e.err }

// mapSegment maps an open segment file read-write, in 2 MiB pages if huge
// (pages.go). It does not pre-fault: prefault stores into every page, which
// is only harmless on a segment known to be all zeros (recovery maps
// segments full of records).
func mapSegment(f *os.File, path string, seq uint64, size int64, huge bool) (*seg, error) {
	if st, err := f.Stat(); err != nil || st.Size() != size {
		f.Close()
		if err == nil {
			err = fmt.Errorf("file is %d bytes, want %d", st.Size(), size)
		}
		return nil, segment.FileError(path, "map", err)
	}
	m, err := segment.MapFile(f, size, true, huge)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &seg{seq: seq, seed: segment.FrameSeed(seq), path: path, data: m, f: f, dataLimit: segment.DataLimit(size), tally: segment.NewTally(), durable: segment.NewTally(), huge: huge}, nil
}

// prefault makes every page of [off, end) of s present, writable and
// warm, so appenders take no fault and no first-touch cost on the hot
// path. MADV_POPULATE_WRITE (Linux 5.14) installs the pages in one call,
// but on the VMs we measured the first store to each page still cost
// ~4 µs (the hypervisor backs guest memory lazily), so one store per page
// follows it. Storing zero keeps the contents only because every page but
// the header's reads as zero: call it on new segments and on empty ones,
// never on a segment that may hold records (it would change one byte per
// page).
//
// The stores run under one segment.Guard: a file truncated under the
// writer (FORMAT.md section 12, assumption 8) costs a *ChangedError at
// the first page it lost, not a SIGBUS that kills the process. The
// madvise's own failure is ignored: on such a file it is EFAULT (no
// signal), and the stores that follow meet the same page and name it.
func (s *seg) prefault(off, end int64) error {
	_ = unix.Madvise(s.data[off:end], unix.MADV_POPULATE_WRITE) // an optimisation; the stores below suffice
	page := int64(os.Getpagesize())
	err := segment.Guard(s.data, func() {
		for i := off + page; i < end; i += page {
			s.data[i] = 0
		}
	})
	return segment.Changed(s.path, prefaulting, err)
}

// prefaulting is what a segment file truncated under populate or fill was
// "changed while it was" doing (segment.ChangedError).
const prefaulting = "being pre-faulted"

// flush makes the mapped bytes [0, upto) durable, skipping what an earlier
// flush covered. It is safe against a concurrent unmap by the sealer.
//
// What an earlier flush covered is the frames that were committed when its
// msync began, not the range it wrote: a frame still reserved then (or a
// later record in the same page) is committed afterwards by a store that
// dirties the page again, so the next flush starts at that frame's page.
func (w *Writer) flush(s *seg, upto int64) error {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	if s.unmapped {
		return s.sealErr
	}
	if upto <= s.synced {
		return nil
	}
	size := int64(len(s.data))
	// Before the msync: every frame it passes is written whole. Guarded
	// as the sealer's reads are (sealPass): a file truncated under the
	// writer fails it, naming the file, instead of killing the process.
	if err := segment.Guard(s.data, func() { s.durable.Advance(s.data) }); err != nil {
		return w.flushFailed(segment.Changed(s.path, "being flushed", err))
	}
	covered := min(s.durable.Off, upto)
	page := int64(os.Getpagesize())
	from := s.synced &^ (page - 1)
	end := min((upto+page-1)&^(page-1), size)
	if err := w.opts.FS.Msync(s.data[from:end]); err != nil {
		return w.flushFailed(fmt.Errorf("msync %s [%d, %d): %w", s.path, from, end, err))
	}
	s.flushes.Add(1)
	s.synced = max(s.synced, covered)
	return nil
}

// flushFailed records err, a failure of flush, before flush releases
// mapMu: the failed msync has reported the error on the segment's file,
// whose fsync by the seal that takes mapMu next succeeds, and a Close
// that ends before the Sync records it must find the writer failed (as
// fsyncAll's failures are, under wb). It returns err.
func (w *Writer) flushFailed(err error) error {
	w.fail(err)
	return err
}

// finish writes footer f into s, makes it durable as the sync mode says,
// and unmaps and closes s. Only the sealer calls it, once every frame up to
// END is committed, so no appender can still write to the mapping.
//
// With SyncInterval and SyncAlways the records reach the disk before the
// footer does, so a power loss never leaves a footer vouching for records
// that are not there: unmap, fsync, write the footer, fsync. Unmapping
// first matters: writing back pages that are still mapped makes the kernel
// write-protect each one again (page_mkclean, a TLB shootdown per page),
// which cost ~20% of `auditseg write`'s CPU on the VMs we measured; msync
// of the mapping did exactly that. Unless KeepCache the file then goes to
// the recycler (recycle.go), which drops its pages just before the next
// segment is populated.
//
// SyncNone writes the footer through the mapping and leaves the writeback
// to the kernel: starting it here (sync_file_range) blocks while the disk
// queue is full, which throttled appenders to the disk's speed in a mode
// that promises nothing about the disk.
//
// mapMu is held throughout, so a concurrent flush (Sync) waits and then
// finds the segment durable.
func (w *Writer) finish(s *seg, f segment.Footer) error {
	return w.seal(s, f, w.opts.Sync != SyncNone, true)
}

// seal is finish with the choices made: durable (records fsynced, then
// the footer written and fsynced) or not (footer through the mapping), and
// whether the file may go to the recycler. Recovery seals durably whatever
// the sync mode, once per segment it repairs, and does not recycle.
//
// A flush (Sync) that finds the segment unmapped relies on what seal did:
// a failed seal leaves its error in sealErr for that flush to return (the
// sticky failure is only set once the sealer gets the error back), and a
// segment sealed without a flush is listed in w.lazy, before it is marked
// unmapped, for Sync to fsync.
func (w *Writer) seal(s *seg, f segment.Footer, durable, recycle bool) (err error) {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	defer func() { s.sealErr = err }()
	size := int64(len(s.data))
	if !durable {
		// Magic last (StoreFooter): a kill in the middle of the store
		// leaves a segment that reads as unsealed, which recovery seals,
		// not one whose footer reads as damaged. Guarded as the sealer's
		// reads are (sealPass): the footer's page may be gone with a file
		// truncated under the writer. Such a segment is not sealed, so
		// not listed; it is unmapped and closed all the same.
		err = segment.Guard(s.data, func() { segment.StoreFooter(s.data[size-segment.FooterSize:], f) })
		if err != nil {
			err = faultErr(s, err)
		} else {
			w.lazy.add(s.path)
		}
	}
	s.unmapped = true
	s.gone.Store(true)
	if uerr := segment.Unmap(s.data); err == nil {
		err = uerr
	}
	if err == nil && durable {
		err = w.sealDurably(s, f, size)
	}
	if err == nil && recycle && w.recycle(s.f, durable) {
		return nil // the recycler closes it
	}
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.path, cerr)
	}
	return err
}

func (w *Writer) sealDurably(s *seg, f segment.Footer, size int64) error {
	if s.synced < size {
		if err := w.opts.FS.Fsync(s.f); err != nil {
			return segment.OpError("fsync", s.path, err)
		}
	}
	if err := segment.WriteFooter(writerAt(w.opts.FS, s.f), s.path, size-segment.FooterSize, f); err != nil {
		return err
	}
	if err := w.opts.FS.Fsync(s.f); err != nil {
		return segment.OpError("fsync footer of", s.path, err)
	}
	s.synced = size
	return nil
}

// release unmaps and closes a segment. Only the sealer calls it, and only
// once every frame of the segment is committed, so no appender can still
// write to the mapping.
func (s *seg) release() error { return s.letGo(segment.Unmap, "release") }

// detach cuts a segment Close gave up on off its file before the
// directory is released: a goroutine still filling a Reservation's Bytes
// writes into anonymous memory from then on, never into the file that
// the next writer recovers and seals (which would break its digest). Its
// memory stays allocated: such a slice may be written at any time.
func (s *seg) detach() error {
	s.detached.Store(true)
	return s.letGo(segment.Detach, "detach")
}

// letGo ends the segment's mapping with unmap (once) and closes its file.
func (s *seg) letGo(unmap func([]byte) error, what string) error {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	if s.unmapped {
		return nil
	}
	s.unmapped = true
	s.gone.Store(true)
	err := unmap(s.data)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, s.path, err)
	}
	return nil
}
