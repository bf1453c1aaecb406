package writer_test

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/internal/testlog"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"golang.org/x/sys/unix"
)

// TestOpenPassesNotRegularSegments: a FIFO or a directory with the name of
// the newest segment, or of one after it, is a segment that cannot be
// read (segment.Entry.NotRegular). Open passes over it, as over a
// segment recovery leaves as it is, and numbers on after it: it used to
// make that number again, its rename replacing the FIFO (and failing on
// the directory). Nothing opens the FIFO (which would block): not
// recovery, nor the first Sync, which flushes the sealed segments
// recovery found, one of them a FIFO too.
func TestOpenPassesNotRegularSegments(t *testing.T) {
	for _, replaceNewest := range []bool{true, false} {
		t.Run(fmt.Sprintf("newest replaced %v", replaceNewest), func(t *testing.T) {
			dir := t.TempDir()
			opts := writer.Options{SegmentSize: 64 << 10, Logger: slog.New(slog.DiscardHandler)}
			l := testlog.Write(t, dir, opts, 5000, func(i int) []byte { return fmt.Appendf(nil, "record %d", i) })
			last, _ := l.Last()
			if last.Seq < 4 {
				t.Fatalf("only %d segments", last.Seq)
			}
			fifos := []string{filepath.Join(dir, segment.FileName(2))}
			if replaceNewest {
				fifos = append(fifos, last.Path)
			}
			for _, p := range fifos {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mkfifo(p, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			odd := filepath.Join(dir, segment.FileName(last.Seq+1))
			if err := os.Mkdir(odd, 0o750); err != nil {
				t.Fatal(err)
			}

			err := testfs.WithinAMinute(t, "Open, Append, Sync and Close not done after a minute: blocked on a FIFO?", func() error {
				w, err := writer.Open(dir, opts)
				if err != nil {
					return err
				}
				pos, err := w.Append([]byte("after"))
				if err == nil && pos.Seq != last.Seq+2 {
					err = fmt.Errorf("appended at %v; want segment %d, after those the odd files take", pos, last.Seq+2)
				}
				if err == nil {
					err = w.Sync()
				}
				return errors.Join(err, w.Close())
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range append(fifos, odd) {
				want := fs.ModeNamedPipe
				if p == odd {
					want = fs.ModeDir
				}
				if st, err := os.Lstat(p); err != nil || st.Mode().Type() != want {
					t.Errorf("%s: %v %v; want it left as it was (%v)", p, st.Mode(), err, want)
				}
			}
		})
	}
}
