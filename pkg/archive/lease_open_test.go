package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"golang.org/x/sys/unix"
)

// TestReopensEndWithContext (review): after OpenImageContext, the
// original is opened again (openOriginal) and an archive read back
// (readBack: a leftover one, not opened before by the run) with a plain
// blocking open, which waits for another process's lease on the file to
// be broken (up to lease-break-time, 45 s by default) whatever the run's
// context says. They wait under it now, as OpenImageContext does:
// cancelled while the lease is held, each returns at once with an error
// wrapping context.Canceled and the open's EWOULDBLOCK.
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
			broken, giveUp := testfs.TakeLease(t, path, unix.F_WRLCK)
			defer giveUp()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opened := make(chan error, 1)
			go func() { opened <- tc.open(ctx, path) }()
			select {
			case <-broken:
			case err := <-opened:
				t.Fatalf("%s returned (%v) while the lease was held", tc.name, err)
			case <-time.After(time.Minute): // a hang, not a measurement
				t.Fatal("the lease's holder was not told within a minute")
			}
			cancel()
			err := <-opened // the lease is still held: only the cancellation ends the wait
			if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
				t.Fatalf("%s cancelled during a lease's break: %v; want an error wrapping context.Canceled and EWOULDBLOCK", tc.name, err)
			}
			t.Log(err)
		})
	}
}
