package archive_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// A log named through a symbolic link and "..", with another log in the
// directory the kernel resolves the name to: compress-finished listed
// and locked that one and planned from its names, compressing in the
// directory the name cleans to, where writer.Open appends. Log A there
// (segments 1 to 3) was planned as log B (segment 1 only, its newest):
// nothing archived, the run clean; and it took B's directory lock, so a
// run on A named plainly ran beside it. A run now waits for A's lock,
// archives A's sealed segments but the newest, as for A named plainly,
// and leaves B alone.
func TestRunNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	a, b := newFixture(t, 3, segSize), newFixture(t, 1, segSize)
	for _, fx := range []struct {
		files map[uint64][]byte
		dir   string
	}{{a.files, cleaned}, {b.files, resolved}} {
		for seq, img := range fx.files {
			writeFile(t, filepath.Join(fx.dir, segment.FileName(seq)), img)
		}
	}
	a.dir, b.dir = cleaned, resolved
	held, err := os.Open(cleaned) // another run's lock
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Run(context.Background(), name, archive.Options{}); !errors.Is(err, archive.ErrBusy) {
		t.Fatalf("run of %s while %s is locked: %v; want ErrBusy", name, cleaned, err)
	}
	held.Close()
	res := run(t, name, archive.Options{})
	if res.Dir != cleaned {
		t.Errorf("run of %s is of %s; want %s", name, res.Dir, cleaned)
	}
	a.checkFinal(t)
	if des, err := os.ReadDir(resolved); err != nil || len(des) != 1 || des[0].Name() != segment.FileName(1) {
		t.Fatalf("log B: %v, %v; want its segment 1 alone", des, err)
	}
	if got := readRecords(t, resolved); !slices.Equal(got, b.records) {
		t.Fatalf("log B: %d records; want %d", len(got), len(b.records))
	}
}
