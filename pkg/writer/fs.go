package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FS is every file operation the writer performs that can fail in ways
// that matter for durability. Options.FS replaces the operating system's,
// for fault injection (tests fail the Nth call) or instrumentation.
type FS interface {
	// OpenFile opens a file as os.OpenFile does.
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

type osFS struct{}

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

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirDurable creates dir and any missing parents, like os.MkdirAll, and
// fsyncs the parent of each directory it created: a new directory's own
// entry is durable only once its parent is flushed, and a log directory
// lost to a power cut would take every record in it, durable or not.
func mkdirDurable(fs FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fs.SyncDir(filepath.Dir(missing[i])); err != nil {
			return fmt.Errorf("fsync %s after creating %s: %w", filepath.Dir(missing[i]), filepath.Base(missing[i]), err)
		}
	}
	return nil
}
