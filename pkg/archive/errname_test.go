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

// sysShapedFS is a FaultFS whose injected fsync errors come as the
// operating system's do, an *os.PathError naming the file ("sync PATH:
// input/output error"), where FaultFS returns a bare errno.
type sysShapedFS struct{ *crashtest.FaultFS }

func (s sysShapedFS) Fsync(f *os.File) error { return sysShaped(f.Name(), s.FaultFS.Fsync(f)) }
func (s sysShapedFS) SyncDir(dir string) error {
	return sysShaped(dir, s.FaultFS.SyncDir(dir))
}

func sysShaped(path string, err error) error {
	var pe *os.PathError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return &os.PathError{Op: "sync", Path: path, Err: err}
}

// An fsync that fails while an original beside its archive is resolved
// names the file once: namedFS named it and syncFile again, "fsync PATH:
// fsync PATH: input/output error"; so did the directory's fsync with the
// operating system's own error ("fsync directory DIR: sync DIR: ...").
func TestResolveFsyncErrorNamesTheFileOnce(t *testing.T) {
	for _, shape := range []struct {
		name string
		wrap func(*crashtest.FaultFS) archive.FS
	}{
		{"bare errno", func(fs *crashtest.FaultFS) archive.FS { return fs }},
		{"system's PathError", func(fs *crashtest.FaultFS) archive.FS { return sysShapedFS{fs} }},
	} {
		t.Run(shape.name, func(t *testing.T) {
			fx := newFixture(t, 2, segSize)
			writeFile(t, fx.zst(1), compressed(t, fx.files[1]))
			for _, c := range []struct {
				fault crashtest.Fault
				want  string
			}{
				{crashtest.Fault{Op: crashtest.OpFsync, N: 1, Path: fx.zst(1)}, "fsync " + fx.zst(1) + ": input/output error"},
				{crashtest.Fault{Op: crashtest.OpSyncDir, N: 1, Path: fx.dir}, "fsync directory " + fx.dir + ": input/output error"},
			} {
				fs := &crashtest.FaultFS{}
				fs.Inject(c.fault)
				res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, FS: shape.wrap(fs)})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Segments) != 1 || res.Segments[0].Err == nil {
					t.Fatalf("%v: %+v; want segment 1 failed", c.fault.Op, res.Segments)
				}
				msg := res.Segments[0].Err.Error()
				if msg != c.want || !errors.Is(res.Segments[0].Err, syscall.EIO) {
					t.Errorf("%v failing while resolving:\n got %q\nwant %q", c.fault.Op, msg, c.want)
				}
				if n := strings.Count(msg, c.fault.Path); n != 1 {
					t.Errorf("%q names %s %d times", msg, c.fault.Path, n)
				}
				fx.checkSafe(t)
			}
		})
	}
}
