package archive_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
)

// Every call of the protocol goes through Options.FS: each one failed
// there fails a segment (or, the cleanup's directory fsync, the run) with
// that error, every original or a verified archive stays, and the next
// run finishes.
func TestFaultsThroughFS(t *testing.T) {
	for _, op := range []crashtest.Op{crashtest.OpCreate, crashtest.OpFsync, crashtest.OpRename, crashtest.OpSyncDir, crashtest.OpRemove} {
		t.Run(op.String(), func(t *testing.T) {
			fx := newFixture(t, 4, segSize)
			fs := &crashtest.FaultFS{}
			fs.Inject(crashtest.Fault{Op: op, N: 1})
			res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, FS: fs})
			if err == nil {
				err = res.Err()
			}
			if !errors.Is(err, syscall.EIO) || fs.Injected() != 1 {
				t.Fatalf("run with the first %s failed: %v (%d injected); want EIO", op, err, fs.Injected())
			}
			fx.checkSafe(t)
			recoverAndCheck(t, fx, "after a failed "+op.String())
		})
	}
}
