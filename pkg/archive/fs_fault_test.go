package archive_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
)

// faultOps are the operations of Options.FS.
var faultOps = []crashtest.Op{crashtest.OpCreate, crashtest.OpFsync, crashtest.OpRename, crashtest.OpSyncDir, crashtest.OpRemove}

// runFailing runs the protocol on the log of fx through a FaultFS
// whose first call of op fails with EIO, seen through wrap, and returns
// the file of the failed call and the run's error.
func runFailing(t *testing.T, fx *fixture, op crashtest.Op, wrap func(*crashtest.FaultFS) archive.FS) (failed string, err error) {
	t.Helper()
	fs := &crashtest.FaultFS{}
	fs.Inject(crashtest.Fault{Op: op, N: 1})
	fs.After = func(c crashtest.Call) {
		if c.Op == op && c.N == 1 {
			failed = c.Path
		}
	}
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, FS: wrap(fs)})
	if err == nil {
		err = res.Err()
	}
	if !errors.Is(err, syscall.EIO) || fs.Injected() != 1 || failed == "" {
		t.Fatalf("run with the first %s failed: %v (%d injected, on %q); want EIO", op, err, fs.Injected(), failed)
	}
	return failed, err
}

// Every call of the protocol goes through Options.FS: each one failed
// there fails a segment (or, the cleanup's directory fsync, the run) with
// that error, every original or a verified archive stays, and the next
// run finishes.
func TestFaultsThroughFS(t *testing.T) {
	for _, op := range faultOps {
		t.Run(op.String(), func(t *testing.T) {
			fx := newFixture(t, 4, segSize)
			runFailing(t, fx, op, func(fs *crashtest.FaultFS) archive.FS { return fs })
			fx.checkSafe(t)
			recoverAndCheck(t, fx, "after a failed "+op.String())
		})
	}
}

// bareFS is a FaultFS whose errors are bare errnos, as an FS need not
// wrap them in an *os.PathError naming the file.
type bareFS struct{ *crashtest.FaultFS }

func bare(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

func (b bareFS) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := b.FaultFS.OpenFile(name, flag, perm)
	return f, bare(err)
}
func (b bareFS) Fsync(f *os.File) error   { return bare(b.FaultFS.Fsync(f)) }
func (b bareFS) SyncDir(dir string) error { return bare(b.FaultFS.SyncDir(dir)) }
func (b bareFS) RenameNoReplace(oldp, newp string) error {
	return bare(b.FaultFS.RenameNoReplace(oldp, newp))
}
func (b bareFS) Remove(name string) error { return bare(b.FaultFS.Remove(name)) }

// TestFSErrorsNameTheFile: a call of Options.FS that fails fails its
// segment with an error naming the file the call was on, whatever the FS
// returns: "fsync archive: input/output error" sent the operator looking
// for which of the log's files would not flush.
func TestFSErrorsNameTheFile(t *testing.T) {
	for _, op := range faultOps {
		t.Run(op.String(), func(t *testing.T) {
			failed, err := runFailing(t, newFixture(t, 2, segSize), op, func(fs *crashtest.FaultFS) archive.FS { return bareFS{fs} })
			if !strings.Contains(err.Error(), failed) {
				t.Errorf("the failed %s of %s: %v; want its name", op, failed, err)
			}
		})
	}
}
