package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
)

// TestReopensEndWithContext (review): after OpenImageContext, the
// original is opened again (openOriginal) and an archive read back
// (readBack: a leftover one, not opened before by the run) with a plain
// blocking open, which waits for another process's lease on the file to
// be broken (up to lease-break-time, 45 s by default) whatever the run's
// context says. They wait under it now, as OpenImageContext does:
// cancelled while the lease is held, each returns at once with an error
// wrapping context.Canceled and the open's EWOULDBLOCK, naming the file
// once.
func TestReopensEndWithContext(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		open func(ctx context.Context, path string) error
	}{
		{"openOriginal", func(ctx context.Context, path string) error {
			before, err := os.Lstat(path)
			if err != nil {
				return err
			}
			f, err := openOriginal(ctx, path, before, before.Size())
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"readBack", func(ctx context.Context, path string) error {
			_, err := readBack(ctx, path, hugeBuffer(t, 2*directAlign))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte("some bytes"), 0o640); err != nil {
				t.Fatal(err)
			}
			err := testfs.CancelInLeaseWait(t, path, func(ctx context.Context) error { return tc.open(ctx, path) })
			if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
				t.Fatalf("%s cancelled during a lease's break: %v; want an error wrapping context.Canceled and EWOULDBLOCK", tc.name, err)
			}
			if n := strings.Count(err.Error(), path); n != 1 {
				t.Errorf("%s's error names %s %d times, want once: %v", tc.name, path, n, err)
			}
		})
	}
}
