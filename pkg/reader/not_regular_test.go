package reader_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestHoleNamesWhatIsThere: a directory, a FIFO or a symbolic link with a
// segment's file name is not a segment (segment.List leaves it out, verify
// calls it unexpected), and the number is a hole in the log, damage as
// before; but the report said "segment 3 is missing" while `ls` shows
// something of that name. It names what is there instead, alone or in a
// run of numbers; the FIFO is never opened (which would block).
func TestHoleNamesWhatIsThere(t *testing.T) {
	for _, tc := range []struct {
		kind string
		make func(string) error
		want string
	}{
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "is a directory"},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "is a named pipe (FIFO)"},
		{"symlink", func(p string) error { return os.Symlink(segment.FileName(2), p) }, "is a symbolic link"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			full := t.TempDir()
			all := writeLog(t, full, 16000, true)
			if all[len(all)-1].pos.Seq < 6 {
				t.Fatalf("only %d segments", all[len(all)-1].pos.Seq)
			}
			for _, holes := range [][]uint64{{3}, {3, 4}} {
				dir := t.TempDir()
				for seq := uint64(1); seq <= 6; seq++ {
					if seq != holes[0] && seq != holes[len(holes)-1] {
						if err := os.Link(filepath.Join(full, segment.FileName(seq)), filepath.Join(dir, segment.FileName(seq))); err != nil {
							t.Fatal(err)
						}
					}
				}
				// The last number of the run is the odd file.
				odd := filepath.Join(dir, segment.FileName(holes[len(holes)-1]))
				if err := tc.make(odd); err != nil {
					t.Fatal(err)
				}
				_, dmg := readAll(t, dir, reader.Options{})
				if len(dmg) != 1 || dmg[0].Kind != reader.DamageMissing || dmg[0].Seq != holes[0] || dmg[0].Len != int64(len(holes)) {
					t.Fatalf("holes %v: damage %v; want one DamageMissing for them", holes, dmg)
				}
				msg := dmg[0].Error()
				if want := odd + ": " + tc.want + ", not a regular file"; !strings.Contains(msg, want) {
					t.Errorf("holes %v: report %q does not say %q", holes, msg, want)
				}
				if len(holes) == 1 && strings.Contains(msg, "missing") {
					t.Errorf("report %q says the segment is missing; its name is taken", msg)
				}
			}
		})
	}
}
