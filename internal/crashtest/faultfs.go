package crashtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"golang.org/x/sys/unix"
)

// Op is one kind of file operation the writer performs through writer.FS,
// or compress-finished through archive.FS.
type Op uint8

const (
	OpCreate     Op = iota // OpenFile with O_CREATE: a new segment's temporary file, a temporary archive
	OpOpen                 // OpenFile without O_CREATE: recovery opening a segment, Sync one sealed unflushed
	OpFallocate            // reserving a new segment's blocks
	OpMsync                // flushing mapped pages (Sync, recovery)
	OpFsync                // flushing a new segment's header, a segment being sealed, or (SyncNone) one sealed unflushed; an archive
	OpRename               // giving a new segment its final name; an archive its final name (RenameNoReplace)
	OpSyncDir              // making directory entries durable
	OpSyncRange            // writing back a segment sealed without a flush (SyncNone), waiting
	OpWrite                // a pwrite into a segment file: a new one's header, a footer (durable seal, recovery)
	OpStartRange           // starting the writeback of the active segment's filled part (SyncInterval, SyncAlways), not waiting; its error is ignored
	OpRemove               // compress-finished removing an original, a leftover or a bad archive
	OpLstat                // Sync looking at a sealed segment's name it could not open
	numOps
)

var opNames = [numOps]string{"create", "open", "fallocate", "msync", "fsync", "rename", "syncdir", "syncrange", "write", "startrange", "remove", "lstat"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Ops lists every operation, for tests that iterate over them.
func Ops() []Op {
	out := make([]Op, numOps)
	for i := range out {
		out[i] = Op(i)
	}
	return out
}

// ParseOp parses an operation name.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if n == s {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("unknown operation %q", s)
}

// Fault fails calls of one operation, as SQLite's I/O-error tests do: the
// Nth call (counting from 1), and with Persist every call after it too.
type Fault struct {
	Op      Op
	N       int
	Persist bool
	// Err is returned instead of performing the call; nil means EIO.
	Err error
	// Path, if set, limits the rule to calls on that file, and N counts
	// those calls only: a fault meant for one file must not land on
	// another whose call came first (a segment the writer prepares in
	// the background).
	Path string
}

// Call describes one operation for the observation hooks.
type Call struct {
	Op   Op
	N    int    // 1-based count of calls of Op so far, this one included
	Path string // the file (OpenFile, Rename source, SyncDir, SyncRange, Write, StartRange, Remove, Lstat), if known
	To   string // Rename's new name
	// Msync is the mapped range being flushed (OpMsync only). It aliases
	// the writer's mapping: read it only inside the hook.
	Msync []byte
	// Write is the bytes being written at Off (OpWrite only). It aliases
	// the writer's buffer: read it only inside the hook.
	Write []byte
	Off   int64
	Err   error // After only: what the call returned
}

// FaultFS is a writer.FS and an archive.FS that counts calls, injects faults and lets a
// test observe every call. The zero value performs every call on the
// operating system. It is safe for concurrent use.
type FaultFS struct {
	mu       sync.Mutex
	calls    [numOps]int
	faults   []Fault
	seen     []int // per rule with a Path: its calls so far
	injected int
	// Before and After, if set, are called around every operation (After
	// also for injected failures), outside the FaultFS's lock. The
	// crash child kills itself from them.
	Before, After func(Call)
	// NoRenameNoReplace makes RenameNoReplace act as on a file system
	// without renameat2's RENAME_NOREPLACE: archive.LinkNoReplace, its
	// remove of the old name through Remove (an OpRemove call of its own,
	// inside the OpRename).
	NoRenameNoReplace bool
}

var (
	_ writer.FS           = (*FaultFS)(nil)
	_ writer.RangeSyncer  = (*FaultFS)(nil)
	_ writer.FileWriter   = (*FaultFS)(nil)
	_ writer.RangeStarter = (*FaultFS)(nil)
	_ writer.Lstater      = (*FaultFS)(nil)
	_ archive.FS          = (*FaultFS)(nil)
)

// Inject adds a fault rule.
func (f *FaultFS) Inject(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, ft)
	f.seen = append(f.seen, 0)
}

// Clear removes every fault rule: the device has recovered.
func (f *FaultFS) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults, f.seen = nil, nil
}

// Calls returns how many calls of op were made (failed ones included).
func (f *FaultFS) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Injected returns how many calls failed by injection.
func (f *FaultFS) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

// begin counts a call and decides whether it fails.
func (f *FaultFS) begin(c *Call) error {
	f.mu.Lock()
	f.calls[c.Op]++
	c.N = f.calls[c.Op]
	var err error
	for i, ft := range f.faults {
		if ft.Op != c.Op || ft.Path != "" && ft.Path != c.Path {
			continue
		}
		n := c.N
		if ft.Path != "" {
			f.seen[i]++
			n = f.seen[i]
		}
		if n == ft.N || ft.Persist && n > ft.N {
			err = ft.Err
			if err == nil {
				err = syscall.EIO
			}
			f.injected++
			break
		}
	}
	f.mu.Unlock()
	if f.Before != nil {
		f.Before(*c)
	}
	return err
}

func (f *FaultFS) end(c Call, err error) error {
	if f.After != nil {
		c.Err = err
		f.After(c)
	}
	return err
}

func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	c := Call{Op: OpOpen, Path: name}
	if flag&os.O_CREATE != 0 {
		c.Op = OpCreate
	}
	if err := f.begin(&c); err != nil {
		return nil, f.end(c, &os.PathError{Op: "open", Path: name, Err: err})
	}
	fh, err := os.OpenFile(name, flag, perm)
	return fh, f.end(c, err)
}

func (f *FaultFS) Fallocate(fh *os.File, size int64) error {
	c := Call{Op: OpFallocate, Path: fh.Name()}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	err := unix.Fallocate(int(fh.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		// Like the writer's own FS: write zeros, never leave a sparse file.
		err = writeZeros(fh, size)
	}
	return f.end(c, err)
}

func writeZeros(fh *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := fh.WriteAt(buf[:min(int64(len(buf)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

func (f *FaultFS) Msync(b []byte) error {
	c := Call{Op: OpMsync, Msync: b}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	return f.end(c, unix.Msync(b, unix.MS_SYNC))
}

func (f *FaultFS) Fsync(fh *os.File) error {
	c := Call{Op: OpFsync, Path: fh.Name()}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	return f.end(c, fh.Sync())
}

func (f *FaultFS) Rename(oldpath, newpath string) error {
	c := Call{Op: OpRename, Path: oldpath, To: newpath}
	if err := f.begin(&c); err != nil {
		return f.end(c, &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err})
	}
	return f.end(c, os.Rename(oldpath, newpath))
}

// RenameNoReplace is archive.FS's rename, counted as OpRename: it fails
// if newpath exists (RENAME_NOREPLACE, or link(2) and unlink(2) where the
// file system has no such rename, as compress-finished does).
func (f *FaultFS) RenameNoReplace(oldpath, newpath string) error {
	c := Call{Op: OpRename, Path: oldpath, To: newpath}
	if err := f.begin(&c); err != nil {
		return f.end(c, &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err})
	}
	var err error = unix.EINVAL
	if !f.NoRenameNoReplace {
		err = unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = archive.LinkNoReplace(oldpath, newpath, f.Remove)
	} else if err != nil {
		err = &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return f.end(c, err)
}

func (f *FaultFS) Remove(name string) error {
	c := Call{Op: OpRemove, Path: name}
	if err := f.begin(&c); err != nil {
		return f.end(c, &os.PathError{Op: "remove", Path: name, Err: err})
	}
	return f.end(c, os.Remove(name))
}

func (f *FaultFS) SyncDir(dir string) error {
	c := Call{Op: OpSyncDir, Path: dir}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	return f.end(c, segment.SyncDir(dir))
}

func (f *FaultFS) SyncRange(fh *os.File, off, n int64) error {
	c := Call{Op: OpSyncRange, Path: fh.Name()}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	const all = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	return f.end(c, unix.SyncFileRange(int(fh.Fd()), off, n, all))
}

func (f *FaultFS) WriteAt(fh *os.File, b []byte, off int64) (int, error) {
	c := Call{Op: OpWrite, Path: fh.Name(), Write: b, Off: off}
	if err := f.begin(&c); err != nil {
		return 0, f.end(c, &os.PathError{Op: "write", Path: fh.Name(), Err: err})
	}
	n, err := fh.WriteAt(b, off)
	return n, f.end(c, err)
}

func (f *FaultFS) StartRange(fh *os.File, off, n int64) error {
	c := Call{Op: OpStartRange, Path: fh.Name()}
	if err := f.begin(&c); err != nil {
		return f.end(c, err)
	}
	return f.end(c, unix.SyncFileRange(int(fh.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE))
}

func (f *FaultFS) Lstat(name string) (os.FileInfo, error) {
	c := Call{Op: OpLstat, Path: name}
	if err := f.begin(&c); err != nil {
		return nil, f.end(c, &os.PathError{Op: "lstat", Path: name, Err: err})
	}
	st, err := os.Lstat(name)
	return st, f.end(c, err)
}
