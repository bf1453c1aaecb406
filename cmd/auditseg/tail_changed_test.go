package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// After a record that changed while it was printed, tail skips the rest
// of its segment, and ef8297e made its closing line count the records it
// skipped so instead of saying "every readable record was printed". But
// it counted every record skipped, those gone with the change too: a file
// cut inside record 300's payload and left so loses records 301 to 383
// (decoded before the cut, in zeros or in pages gone now), and the line
// said "83 records read after a record that changed were not printed",
// as if they could have been. Only the records skipped that were still
// readable are counted now; with none, the claim stands. Where part of
// the cut is written back (the bytes from the next page on), records 301
// to 303 are in the page of zeros the cut left, and 304 to 399 are whole
// again: 96 records.
func TestTailSummaryCountsOnlyReadableSkipped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		restored bool
		want     string
	}{
		{"left cut", false, "every readable record was printed"},
		{"written back from the next page", true, "96 records read after a record that changed were not printed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, offs := sealedSegment(t, dir, 400, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) })
			// As in TestTailRecordCutInsideAPage: tail's first output write
			// is during record 261, in the reader's batch of records 256
			// to 383, decoded before the cut.
			const victim = 300
			out := &truncateOnFirstWrite{t: t, path: path, size: offs[victim] + segment.FrameHeaderSize + 500, restore: tc.restored}
			if page := out.size/4096 + 1; offs[victim+4] <= page*4096 || offs[victim+3] >= page*4096 {
				t.Fatalf("layout: records %d to %d should end in the cut page", victim+1, victim+3)
			}
			stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", dir)

			if n := strings.Count(out.out.String(), "\n"); n != victim {
				t.Fatalf("%d records printed, want the %d before the cut", n, victim)
			}
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if want := fmt.Sprintf("the record at offset %d ", offs[victim]); !strings.Contains(lines[0], want) {
				t.Errorf("first stderr line %q does not name the record at %d", lines[0], offs[victim])
			}
			want := fmt.Sprintf("%s: 1 segment could not be read (see above); %s", dir, tc.want)
			if last := lines[len(lines)-1]; last != want {
				t.Errorf("closing line %q, want %q", last, want)
			}
		})
	}
}

// cutFile truncates the file at path to cut; with restore, it writes the
// bytes cut from the next page boundary on back in place.
func cutFile(path string, cut int64, restore bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.Truncate(path, cut); err != nil || !restore {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	page := (cut/4096 + 1) * 4096
	_, err = f.WriteAt(b[page:], page)
	return err
}
