package archive_test

import (
	"os"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
)

// An auditor reads the log through its files' group (the writer makes
// them 0640): an archive must let exactly the same people read the
// segment as its original did, or compress-finished takes the log away
// from its readers (or gives it to others). Root can give a file any
// group, so the test needs no real one.
func TestArchiveKeepsOriginalsGroupAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the originals a group the test process is not in")
	}
	fx := newFixture(t, 4, segSize)
	const gid = 54321 // no group of the test process's
	want := map[uint64]os.FileMode{1: 0o640, 2: 0o644, 3: 0o600}
	for seq, mode := range want {
		if err := os.Chown(fx.seg(seq), -1, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(fx.seg(seq), mode); err != nil {
			t.Fatal(err)
		}
	}
	run(t, fx.dir, archive.Options{Jobs: 1})
	fx.checkFinal(t)
	for seq, mode := range want {
		st, err := os.Stat(fx.zst(seq))
		if err != nil {
			t.Fatal(err)
		}
		if g := st.Sys().(*syscall.Stat_t).Gid; g != gid || st.Mode().Perm() != mode {
			t.Errorf("%s: group %d mode %v, want the original's: group %d mode %v", fx.zst(seq), g, st.Mode().Perm(), gid, mode)
		}
	}
}
