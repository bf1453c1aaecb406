package writer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// FS is every file operation the writer performs that can fail in ways
// that matter for durability. Options.FS replaces the operating system's,
// for fault injection (tests fail the Nth call) or instrumentation. Two
// more are optional: an FS that implements RangeSyncer also gets the
// writeback of sealed segments under SyncNone, one that implements
// FileWriter the writes into segment files, one that implements
// RangeStarter the write-ahead under SyncInterval and SyncAlways, one
// that implements Lstater the look at a sealed segment's name that Sync
// could not open.
//
// The optional interfaces are found by type assertion, so a wrapper that
// embeds an FS as an interface (struct{ writer.FS }) has none of them,
// even where the FS it wraps does (Go promotes only FS's methods), and
// the writer would make those calls itself, past both. A wrapper says
// where they are with a method Unwrap() FS returning the FS it wraps:
// for each optional interface the writer uses the first FS that has it
// in the chain from Options.FS through each Unwrap, and the system call
// only when none has. A wrapper that implements one itself is used for
// it, as it comes first.
type FS interface {
	// OpenFile opens a file as os.OpenFile does. Recovery's open of a
	// segment passes O_NONBLOCK, and expects EWOULDBLOCK under another
	// process's lease, which OpenContext waits out with its context.
	OpenFile(name string, flag int, perm os.FileMode) (*os.File, error)
	// Fallocate reserves size bytes of disk for f (and sets its size).
	Fallocate(f *os.File, size int64) error
	// Msync writes the mapped range b to disk (MS_SYNC).
	Msync(b []byte) error
	// Fsync flushes f's data and metadata.
	Fsync(f *os.File) error
	// Rename renames a file atomically.
	Rename(oldpath, newpath string) error
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
}

// RangeSyncer is an FS that also performs the writeback the writer waits
// for under SyncNone, of each sealed segment before its memory is reused
// (recycle.go), and at Open of an unused segment it continues in before
// dropping its pages (an error there is ignored: the pages are zeros). It
// is optional, so that an FS written before it keeps compiling: without
// it the writer calls sync_file_range itself, and a fault injector cannot
// fail that call.
type RangeSyncer interface {
	// SyncRange writes f's dirty pages in [off, off+n) back and waits for
	// them (sync_file_range with WAIT_BEFORE, WRITE and WAIT_AFTER). An
	// error is sticky for the writer, as a failed fsync is.
	SyncRange(f *os.File, off, n int64) error
}

// FileWriter is an FS that also performs the writer's writes into segment
// files: a new segment's header, and the footer that the durable sealer
// and recovery write in two writes, the magic last
// (segment.WriteFooter). It is optional, as RangeSyncer is: without it
// the writer writes through the *os.File itself.
type FileWriter interface {
	// WriteAt writes b at off in f, as f.WriteAt does.
	WriteAt(f *os.File, b []byte, off int64) (int, error)
}

// RangeStarter is an FS that also starts, without waiting, the writeback
// of the filled part of the active segment under SyncInterval and
// SyncAlways (the write-ahead, background.go). That call is advice: its
// error is ignored, and durability still comes from Msync and Fsync. It
// is optional, as RangeSyncer is, and apart from it because it must not
// wait for the disk: the segment's mapping lock, which a flush needs, is
// held meanwhile.
type RangeStarter interface {
	// StartRange starts the writeback of f's dirty pages in [off, off+n)
	// and returns (sync_file_range with WRITE only).
	StartRange(f *os.File, off, n int64) error
}

// Lstater is an FS that also performs the Lstat by which Sync tells what
// the name of a sealed segment it could not open holds (a symbolic link,
// a socket: the open's error does not say). It is optional, as
// RangeSyncer is: without it the writer calls os.Lstat itself.
type Lstater interface {
	// Lstat describes the file at name, never through a symbolic link,
	// as os.Lstat does.
	Lstat(name string) (os.FileInfo, error)
}

type osFS struct{}

var (
	_ RangeSyncer  = osFS{}
	_ FileWriter   = osFS{}
	_ RangeStarter = osFS{}
	_ Lstater      = osFS{}
)

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

func (osFS) Fallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return writeZeros(f, size) // still never sparse
	}
	return err
}

func writeZeros(f *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

func (osFS) Msync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }

// Fsync drops the file name from the error: callers name the file
// themselves, as it is at that step (before its rename a segment's file is
// its .tmp name).
func (osFS) Fsync(f *os.File) error {
	err := f.Sync()
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
func (osFS) Rename(oldp, newp string) error { return os.Rename(oldp, newp) }

func (osFS) SyncRange(f *os.File, off, n int64) error {
	const all = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	return unix.SyncFileRange(int(f.Fd()), off, n, all)
}

func (osFS) StartRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

func (osFS) WriteAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }

func (osFS) Lstat(name string) (os.FileInfo, error) { return os.Lstat(name) }

// optional is the first FS in the chain from fs through each Unwrap
// that implements T (see FS). The chain is followed for at most
// maxUnwrap links, so an Unwrap that returns its own FS (a cycle) costs
// the optional interface, not a hang in Open.
func optional[T any](fs FS) (T, bool) {
	for range maxUnwrap {
		if fs == nil {
			break
		}
		if t, ok := fs.(T); ok {
			return t, true
		}
		u, ok := fs.(interface{ Unwrap() FS })
		if !ok {
			break
		}
		fs = u.Unwrap()
	}
	var none T
	return none, false
}

// maxUnwrap bounds the chain optional follows; real wrappers nest a few
// deep.
const maxUnwrap = 32

// writerAt is f written through fs's WriteAt, if it has one.
func writerAt(fs FS, f *os.File) io.WriterAt {
	if fw, ok := optional[FileWriter](fs); ok {
		return fileWriterAt{fw, f}
	}
	return f
}

type fileWriterAt struct {
	fw FileWriter
	f  *os.File
}

func (a fileWriterAt) WriteAt(b []byte, off int64) (int, error) { return a.fw.WriteAt(a.f, b, off) }

// syncRange is fs's SyncRange, or the operating system's if it has none.
func syncRange(fs FS) func(f *os.File, off, n int64) error {
	if rs, ok := optional[RangeSyncer](fs); ok {
		return rs.SyncRange
	}
	return osFS{}.SyncRange
}

// lstat is fs's Lstat, or the operating system's if it has none.
func lstat(fs FS) func(name string) (os.FileInfo, error) {
	if l, ok := optional[Lstater](fs); ok {
		return l.Lstat
	}
	return os.Lstat
}

// startRange is fs's StartRange, or the operating system's if it has none.
func startRange(fs FS) func(f *os.File, off, n int64) error {
	if rs, ok := optional[RangeStarter](fs); ok {
		return rs.StartRange
	}
	return osFS{}.StartRange
}

func (osFS) SyncDir(dir string) error { return segment.SyncDir(dir) }

// mkdirDurable creates dir and any missing parents, like os.MkdirAll, and
// fsyncs the parent of each directory it created: a new directory's own
// entry is durable only once its parent is flushed, and a log directory
// lost to a power cut would take every record in it, durable or not. It
// returns the directories it found missing, dir first: those a failed
// Open removes again (abandon).
func mkdirDurable(fs FS, dir string) (created []string, err error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		// Lstat: a dangling symlink is no missing directory, and not
		// Open's to remove.
		if _, err := os.Lstat(d); err == nil || !errors.Is(err, os.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		// MkdirAll stops at the first level it cannot make (no inode
		// left, a name too long) and keeps the levels above it, which a
		// failed Open promises not to leave behind.
		for _, d := range missing {
			if rerr := unix.Rmdir(d); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				break
			}
		}
		// A dangling symlink or a loop fails as "mkdir DIR: file exists",
		// which reads as nonsense to someone who sees no DIR there.
		if target, lerr := os.Readlink(dir); lerr == nil && errors.Is(err, os.ErrExist) {
			_, serr := os.Stat(dir)
			return nil, fmt.Errorf("%s is a symbolic link to %s, which leads to no directory: %w", dir, target, serr)
		}
		return nil, err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fs.SyncDir(filepath.Dir(missing[i])); err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Base(missing[i]), segment.OpError("fsync directory", filepath.Dir(missing[i]), err))
		}
	}
	return missing, nil
}

// abandon releases lock (nil: never taken) after Open failed, removing
// the directories Open created, dir first, as long as each is empty: a
// first run that fails (a full disk) leaves no empty log directory
// behind, nor the parents made for it. A directory anything else was
// put in meanwhile stays, and so do those above it.
func abandon(lock *segment.Lock, created []string) {
	if len(created) == 0 {
		lock.Release()
		return
	}
	if lock != nil {
		if removed, _ := lock.ReleaseRemoving(); !removed {
			return
		}
	} else if os.Remove(created[0]) != nil {
		return
	}
	for _, d := range created[1:] {
		if os.Remove(d) != nil {
			return
		}
	}
}
