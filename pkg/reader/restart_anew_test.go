package reader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// writeOne writes segment 1 of a log in dir, created at created, with n
// records, unsealed (a writer died in it), and returns their positions.
func writeOne(t *testing.T, dir string, created int64, n int) []Position {
	t.Helper()
	return writeSeg(t, dir, 1, created, n, false)
}

// writeSeg writes segment seq of a log in dir, created at created, with
// n records, sealed if seal (the chain's digest is not checked by a
// reader), and returns their positions.
func writeSeg(t *testing.T, dir string, seq uint64, created int64, n int, seal bool) []Position {
	t.Helper()
	img := segment.NewImage(seq, segment.MinSegmentSize, created)
	var ps []Position
	off := int64(segment.HeaderSize)
	for i := range n {
		ps = append(ps, Position{Seq: seq, Offset: off})
		off = segment.PutFrame(img, seq, off, segment.TypeData, created+int64(i), fmt.Appendf(nil, "record %d", i))
	}
	if seal {
		segment.PutEnd(img, seq, off, created)
		if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, created); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640); err != nil {
		t.Fatal(err)
	}
	return ps
}

// A reader whose start is past segment 1's start (After or At a record
// in it, records to Skip) and that has found nothing in segment 1 reads a
// segment 1 made again with that start (startsAnew): the file it held had
// no record, so its start named none of it. But "found nothing" is "not
// walked yet" too: a reader that opened segment 1 and had not walked it
// when the log was emptied and begun again (between openSeg and its first
// refill, microseconds) applied a cursor meant for the old log's records
// to the new log's segment 1 and skipped its first records silently
// (found by a review). The state is built here: segment 1 opened, not
// walked, and the log begun again. The file the reader holds held
// records, so the new file is another log's: ErrLogReplaced. A start at
// the segment's start loses nothing of the new log and reads it whole.
func TestUnwalkedSegmentOneThatHeldRecordsMadeAgain(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(old []Position) Start
	}{
		{"After", func(old []Position) Start { return After(old[2]) }},
		{"At", func(old []Position) Start { return At(old[3]) }},
		{"Skip", func([]Position) Start { return Skip(3) }},
		{"First", func([]Position) Start { return First() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			old := writeOne(t, dir, 1_700_000_000_000_000_000, 5)
			r, err := Open(dir, Options{Follow: true, Start: c.start(old)})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.openNext() || r.cur == nil || r.cur.seq != 1 || !blank(r.cur) {
				t.Fatalf("not in an unwalked segment 1: %+v", r.cur)
			}
			testfs.Empty(t, dir)
			fresh := writeOne(t, dir, 1_700_000_001_000_000_000, 5)
			var got []Position
			for r.Next() {
				got = append(got, r.Record().Position)
			}
			if c.name == "First" {
				if r.Err() != nil || fmt.Sprint(got) != fmt.Sprint(fresh) {
					t.Fatalf("read %v (err %v), want the new log's %v", got, r.Err(), fresh)
				}
				return
			}
			if !errors.Is(r.Err(), ErrLogReplaced) || len(got) != 0 {
				t.Fatalf("read %v of the new log with the old log's start, err %v; want ErrLogReplaced", got, r.Err())
			}
		})
	}
}
