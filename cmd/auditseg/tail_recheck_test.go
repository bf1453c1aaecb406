package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A segment file cut inside a page zero-fills the rest of that page: the
// mapping reads zeros there, without a fault. tail's in-order path copied
// the payload of a record decoded (and CRC-checked) before the cut
// without error and printed it with NUL bytes where its data had been,
// as if it were good; the damage line that followed named the record
// after it as the first not printed. The record is now checked again
// once copied: it is not printed, and tail reports it as it reports a
// payload that faulted (exit 2, the record's position named).
func TestTailRecordCutInsideAPage(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 400, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) })
	// --from: the in-order path. The reader decodes 128 records a batch
	// (1001 bytes of output each); tail's 256 KiB buffer is first written
	// out during record 261, in the batch of records 256 to 383, already
	// decoded then. The cut is in the middle of record 300's payload, in
	// the page that holds its header.
	const victim = 300
	cut := offs[victim] + segment.FrameHeaderSize + 500
	if cut%4096 == 0 || cut/4096 != offs[victim]/4096 || offs[victim]+1024 > (cut/4096+1)*4096 {
		t.Fatalf("layout: cut at %d for the record at %d", cut, offs[victim])
	}
	out := &truncateOnFirstWrite{t: t, path: path, size: cut}
	cur := filepath.Join(t.TempDir(), "cursor")
	stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", "--cursor-file", cur, dir)

	lines := strings.Split(out.out.String(), "\n")
	if i := bytes.IndexByte(out.out.Bytes(), 0); i >= 0 {
		t.Errorf("a record with NUL bytes was printed (output byte %d, line %d)", i, strings.Count(out.out.String()[:i], "\n"))
	}
	if n := len(lines) - 1; n != victim {
		t.Errorf("%d records printed, want the %d before the cut", n, victim)
	}
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	want := fmt.Sprintf("auditseg tail: %s: changed while it was read (truncated?): the record at offset %d ", path, offs[victim])
	if first := strings.SplitN(stderr, "\n", 2)[0]; !strings.HasPrefix(first, want) {
		t.Errorf("first stderr line %q, want %q…", first, want)
	}
	// The next run must start before the record, not after it.
	if _, err := os.Stat(cur); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cursor file written (%v); the record at %d was not printed", err, offs[victim])
	}
}

// After a record that changed while it was printed, tail skips the rest
// of its segment; the file may be whole again by the reader's next walk
// (here it is written back in place once tail has reported the record),
// so the records skipped may well have been readable. The closing line
// said "every readable record was printed" all the same; it now says how
// many records tail read and did not print.
func TestTailSummaryAfterSkippedRecords(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 400, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) })
	// As in TestTailRecordCutInsideAPage: the first write is during record
	// 261, in the batch of records 256 to 383; the second is the flush
	// before the stderr line for record 300, which restores the file
	// before the reader walks the batch from record 384.
	const victim = 300
	out := &cutThenRestore{t: t, path: path, size: offs[victim] + segment.FrameHeaderSize + 500}
	stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", dir)

	if n := strings.Count(out.out.String(), "\n"); n != victim || out.writes < 2 {
		t.Fatalf("%d records printed in %d writes, want the %d before the cut", n, out.writes, victim)
	}
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if want := fmt.Sprintf("the record at offset %d ", offs[victim]); len(lines) != 2 || !strings.Contains(lines[0], want) {
		t.Fatalf("stderr %q, want a line naming the record at %d, then the closing line", stderr, offs[victim])
	}
	want := fmt.Sprintf("%s: 1 segment could not be read (see above); 99 records read after a record that changed were not printed", dir)
	if lines[1] != want {
		t.Errorf("closing line %q, want %q", lines[1], want)
	}
}

// cutThenRestore is tail's stdout: its first write truncates the file at
// path to size, its second writes the bytes cut back in place (the
// mapping shows them again), as an operator undoing a mistake might.
type cutThenRestore struct {
	t      *testing.T
	path   string
	size   int64
	cut    []byte
	writes int
	out    bytes.Buffer
}

func (w *cutThenRestore) Write(p []byte) (int, error) {
	var err error
	switch w.writes++; w.writes {
	case 1:
		var b []byte
		if b, err = os.ReadFile(w.path); err == nil {
			w.cut = b[w.size:]
			err = os.Truncate(w.path, w.size)
		}
	case 2:
		var f *os.File
		if f, err = os.OpenFile(w.path, os.O_WRONLY, 0); err == nil {
			_, err = f.WriteAt(w.cut, w.size)
			f.Close()
		}
	}
	if err != nil {
		w.t.Error(err)
	}
	return w.out.Write(p)
}
