package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// syncer implements group commit: concurrent Sync calls share one flush.
// Each caller takes a ticket; a flush started after ticket t was issued
// covers every record committed before t, so one flush completes every
// ticket issued before it began.
type syncer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	issued  uint64
	done    uint64
	running bool
}

func (sy *syncer) init(w *Writer) { sy.cond = sync.NewCond(&sy.mu) }

// Sync returns once every record committed before the call is durable on
// disk, in every sync mode: with SyncNone it is the only flush there is,
// and it covers the segments sealed since the last Sync too. The first
// Sync after Open also fsyncs every sealed segment file recovery found,
// and every one it left unsealed as damaged (an earlier writer may have
// written them without a flush): an open and an fsync each, ~50 µs for
// a clean file on ext4 (0.25 s for 5000, BenchmarkFirstSyncAfterReopen);
// one it cannot open is passed over. A sealed segment file removed (or
// replaced by a FIFO, a directory or a link, which is logged) before
// the Sync that would flush it is passed over too: its records left the
// log with it. A flush failure is
// sticky: this and every later call (Append included) return it, because
// the kernel may have dropped the pages that failed to write and
// retrying would claim durability falsely.
func (w *Writer) Sync() error {
	if e := w.failed.Load(); e != nil {
		return *e
	}
	sy := &w.syncer
	sy.mu.Lock()
	sy.issued++
	ticket := sy.issued
	for sy.done < ticket && w.failed.Load() == nil {
		if sy.running {
			sy.cond.Wait()
			continue
		}
		sy.running = true
		cover := sy.issued
		sy.mu.Unlock()
		err := w.flushAll()
		sy.mu.Lock()
		sy.running = false
		if err != nil {
			w.fail(err)
		}
		sy.done = cover
		sy.cond.Broadcast()
	}
	sy.mu.Unlock()
	if e := w.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// flushAll flushes the committed part of every segment not yet sealed
// (with SyncInterval and SyncAlways sealing flushes the whole file
// itself), then fsyncs the segments sealed without a flush (SyncNone)
// since the last call.
func (w *Writer) flushAll() error {
	// Queue the segments rotated in since the sealer last looked: records
	// committed in them before this Sync must be flushed now, not when the
	// sealer gets round to it.
	w.sealer.backlog(w.cur.Load())
	for _, s := range w.sealer.snapshot() {
		upto := min(s.tail.Load(), segment.RecordLimit(int64(len(s.data))))
		if err := w.flush(s, upto); err != nil {
			return err
		}
	}
	// After the queue: a segment sealed while it was being flushed is
	// listed by then (seal lists it before marking it unmapped).
	return w.lazy.fsyncAll(w.opts.FS, w.opts.Logger, w.fail)
}

// lazySealed lists the segment files sealed without a flush (SyncNone),
// which only Sync makes durable. A path is a few dozen bytes per segment,
// so a writer that never calls Sync keeps a list it can afford.
type lazySealed struct {
	mu    sync.Mutex
	paths []string
	// inherited are the sealed segment files recovery found (sealed by
	// an earlier writer, perhaps without a flush), and those it left
	// unsealed as damaged. One that cannot be
	// opened (its mode changed, say) is passed over: this writer never
	// had it, and a file it cannot open must not stop it for good.
	inherited []string
	// wb is held by the dropper across a writeback and the failure it
	// records, and by fsyncAll across its fsyncs. A writeback that fails
	// has consumed the error: an fsync of the same file on a descriptor
	// opened after that does not see it. Without wb, a Sync could fsync a
	// file between the failed writeback and w.fail and report its records
	// durable; with it, Sync either fsyncs first (and sees the error
	// itself) or finds the writer failed when it returns.
	wb sync.Mutex
}

func (l *lazySealed) add(path string) {
	l.mu.Lock()
	l.paths = append(l.paths, path)
	l.mu.Unlock()
}

// fsyncAll fsyncs every listed file and empties the list. A file that is
// gone was removed after it was sealed: by compress-finished, which makes
// its archive durable first, or by the operator; so was one whose name
// now holds a FIFO, a directory or a link (logged to log): there is no
// file of ours left to flush under that name. A failure is passed to
// fail before wb is released: a Close or Sync that takes wb next finds
// the list empty, and must find the writer failed.
func (l *lazySealed) fsyncAll(fs FS, log *slog.Logger, fail func(error)) (err error) {
	l.wb.Lock()
	defer l.wb.Unlock()
	defer func() {
		if err != nil {
			fail(err)
		}
	}()
	l.mu.Lock()
	paths, inherited := l.paths, l.inherited
	l.paths, l.inherited = nil, nil
	l.mu.Unlock()
	for i, p := range append(inherited, paths...) {
		f, err := openSealed(fs, p)
		if errors.Is(err, errReplaced) {
			log.Warn("a sealed segment was replaced before it was flushed: its records are not in the log", "file", p, "err", err)
			continue
		}
		if errors.Is(err, os.ErrNotExist) || err != nil && i < len(inherited) {
			continue
		}
		if err != nil {
			return segment.OpError("open to flush", p, err)
		}
		err = fs.Fsync(f)
		f.Close()
		if err != nil {
			return segment.OpError("fsync", p, err)
		}
	}
	return nil
}

// errReplaced marks a sealed segment's name that no longer holds a
// regular file.
var errReplaced = errors.New("replaced")

// openSealed opens the sealed segment file at path to fsync it: never
// through a symbolic link, and with O_NONBLOCK, so that a FIFO put under
// its name fails the regular-file check instead of blocking the open, and
// Sync and Close (which wait for wb, held here) with it, until something
// writes to the FIFO; a lease's break is waited out as recovery's open
// does. A name that holds another kind of file than a regular one gives
// an error wrapping errReplaced that says what it holds. The look at a
// name it cannot open goes through fs (Lstater): one that fails leaves
// the open's error standing, with its own, for nothing then says the
// segment is not ours to flush.
func openSealed(fs FS, path string) (*os.File, error) {
	var f *os.File
	err := segment.WaitLease(context.Background(), func() (err error) {
		f, err = fs.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	var st os.FileInfo
	if err == nil {
		if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
		}
	} else {
		// The open's own error for a link (ELOOP) or a socket (ENXIO)
		// does not say what is there.
		var lerr error
		if st, lerr = lstat(fs)(path); lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
			// The file is named once, by the open's error.
			var pe *os.PathError
			if errors.As(lerr, &pe) && pe.Path == path {
				lerr = pe.Err
			}
			return nil, fmt.Errorf("%w; lstat, to tell what the name holds: %w", err, lerr)
		}
	}
	if st != nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %w", errReplaced, segment.NotRegularFile(path, st.Mode()))
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// committedAsClosed is the error for a record whose commit met a segment
// Close had given up on and cut off its file (seg.detach). Append's commit
// is a plain release store, not fenced; on amd64 the load of detached
// after it still cannot read false for a store that missed the file.
// Close stores detached before it remaps the segment. A load that returns
// false has retired before that store reached this core (a later
// invalidation of the line replays a load not yet retired); stores retire
// in order, so the commit store retired before it, translated to the
// file's page, which the remap does not free: the record is in the file.
// A load reading true reports the record as possibly lost (ErrMaybeLost).
// Elsewhere the store is sync/atomic's, sequentially consistent.
func (w *Writer) committedAsClosed(pos Position) error {
	return fmt.Errorf("%s: %w: the record at %v was committed as Close gave up on its segment: %w", w.dir, ErrClosed, pos, ErrMaybeLost)
}

// syncCommitted makes the record just committed at pos durable
// (SyncAlways). A Close that began after the commit fails the Sync with
// ErrClosed, yet seals that record's segment durably: the record's fate
// is then Close's result. Reporting ErrClosed for a record that is in the
// log, durable, would make a caller that retries write it twice; so would
// Close's or the flush's error alone, which a refused record also gets
// (Commit has no Position to tell them apart): ErrNotDurable says the
// record is in the log.
func (w *Writer) syncCommitted(pos Position) error {
	err := w.Sync()
	if errors.Is(err, ErrClosed) {
		<-w.closeEnd
		err = w.closeErr
	}
	if err != nil {
		return fmt.Errorf("the record at %v: %w: %w", pos, ErrNotDurable, err)
	}
	return nil
}
