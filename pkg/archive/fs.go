package archive

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// FS is every file operation of the protocol whose order makes it safe
// against a power cut: the creation of the temporary archive, the fsyncs
// of files and of the directory, the rename into place and the removals
// (of the original, of leftovers, of a bad archive). Options.FS replaces
// the operating system's, so that a test can fail these calls or watch
// them to build what a power cut at any point could leave. OpenFile,
// Fsync and SyncDir are writer.FS's, so that one implementation
// (crashtest.FaultFS) serves both packages.
//
// Writes into the temporary archive are not here: its content is durable
// only once Fsync returns, and a power cut before that may leave any part
// of it, which a test models from what Fsync made durable.
type FS interface {
	// OpenFile opens a file as os.OpenFile does; here only to create the
	// temporary archive (O_CREATE|O_EXCL).
	OpenFile(name string, flag int, perm os.FileMode) (*os.File, error)
	// Fsync flushes f's data and metadata.
	Fsync(f *os.File) error
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
	// RenameNoReplace renames oldpath to newpath, failing if newpath
	// exists: an archive is never overwritten.
	RenameNoReplace(oldpath, newpath string) error
	// Remove removes a file, as os.Remove does.
	Remove(name string) error
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}

func (osFS) Fsync(f *os.File) error { return f.Sync() }

func (osFS) SyncDir(dir string) error { return segment.SyncDir(dir) }

func (osFS) RenameNoReplace(oldp, newp string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldp, unix.AT_FDCWD, newp, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return LinkNoReplace(oldp, newp, os.Remove)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldp, New: newp, Err: err}
	}
	return nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

// LinkNoReplace is RenameNoReplace on a file system without renameat2's
// RENAME_NOREPLACE: link(2), which refuses an existing newpath as that
// flag does, then remove (os.Remove, or an FS's) of oldpath. It is
// exported for an FS to take the same way (crashtest.FaultFS does, to
// test it). Between the two calls both names hold the archive, already
// fsynced and verified under its temporary name: a crash there leaves a
// temporary archive beside the archive, which the next run removes as a
// leftover before it resolves the original beside its archive. A failed
// remove is an error, though newpath holds the file: the rename is not
// done until the second name is gone.
func LinkNoReplace(oldpath, newpath string, remove func(string) error) error {
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	if err := remove(oldpath); err != nil {
		return fmt.Errorf("%s linked, its temporary name not removed: %w", newpath, segment.OpError("remove", oldpath, err))
	}
	return nil
}

// syncFile makes the content of the regular file at path durable (never
// through a symbolic link).
func (r *runner) syncFile(path string) error {
	f, err := segment.OpenNoFollowContext(r.ctx, path)
	if err != nil {
		return segment.OpError("open to fsync", path, err)
	}
	defer f.Close()
	// OpError: namedFS has named the file already.
	return segment.OpError("fsync", path, r.opts.FS.Fsync(f))
}

// syncDir makes the log directory's entries (creations, renames, removals)
// durable.
func (r *runner) syncDir() error {
	if err := r.opts.FS.SyncDir(r.dir); err != nil {
		return segment.OpError("fsync directory", r.dir, err)
	}
	return nil
}

// namedFS is Options.FS with every failure naming its file: an FS need
// not wrap its errors in an *os.PathError (crashtest.FaultFS returns a
// bare errno for an fsync), and "fsync archive: input/output error"
// leaves the operator to guess which of the log's files would not flush.
// SyncDir's callers name the directory themselves.
type namedFS struct{ FS }

func (n namedFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	return f, named("open", name, err)
}

func (n namedFS) Fsync(f *os.File) error { return named("fsync", f.Name(), n.FS.Fsync(f)) }

func (n namedFS) RenameNoReplace(oldp, newp string) error {
	err := n.FS.RenameNoReplace(oldp, newp)
	if err == nil || strings.Contains(err.Error(), oldp) {
		return err
	}
	return &os.LinkError{Op: "rename", Old: oldp, New: newp, Err: err}
}

func (n namedFS) Remove(name string) error { return named("remove", name, n.FS.Remove(name)) }

// named is err, if it does not name path already, as an *os.PathError of
// op on path (errors.Is and As still reach err).
func named(op, path string, err error) error {
	if err == nil || strings.Contains(err.Error(), path) {
		return err
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}
