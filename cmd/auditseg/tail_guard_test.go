package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// sealedSegment writes segment 1 of a 4 MiB log in dir, sealed, holding
// n records with payload(i), and returns its path and the records'
// offsets.
func sealedSegment(t *testing.T, dir string, n int, payload func(i int) []byte) (string, []int64) {
	t.Helper()
	const size = 4 << 20
	now := time.Unix(1_700_000_000, 0).UnixNano()
	img := segment.NewImage(1, size, now)
	off := int64(segment.HeaderSize)
	offs := make([]int64, n)
	for i := range n {
		offs[i] = off
		off = segment.PutFrame(img, 1, off, segment.TypeData, now, payload(i))
	}
	segment.PutEnd(img, 1, off, now)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segment.FileName(1))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	return path, offs
}

// recordAt opens a reader on the log in dir and moves it to the record at
// off of segment 1.
func recordAt(t *testing.T, dir string, off int64) (*reader.Reader, reader.Record) {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{Start: reader.At(segment.Position{Seq: 1, Offset: off})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !r.Next() || r.Record().Position.Offset != off {
		t.Fatalf("no record at 1:%d: %v", off, r.Err())
	}
	return r, r.Record()
}

// A record's payload is in its segment's mapping; tail prints from a copy
// made under a fault guard. Here the file is truncated after the record
// was handed out: the copy is an error naming the segment and the file
// offset that has no data, where the print killed tail with SIGBUS.
func TestPayloadOfTruncatedSegment(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 400, func(int) []byte { return bytes.Repeat([]byte("x"), 100) })
	frame := offs[320] // 41024, in the page from 40960 on
	_, rec := recordAt(t, dir, frame)

	buf, err := payloadCopy(nil, &rec)
	if err != nil || string(rec.Payload) != strings.Repeat("x", 100) || &rec.Payload[0] != &buf[0] {
		t.Fatalf("intact payload: %v, %q", err, rec.Payload)
	}

	_, rec = recordAt(t, dir, frame)
	if err := os.Truncate(path, 40<<10); err != nil {
		t.Fatal(err)
	}
	_, err = payloadCopy(buf, &rec)
	// The copy faults in the payload; the data stops at the file's end.
	want := fmt.Sprintf("%s: changed while it was read (truncated?): no data at offset %d; the record at 1:%d ", path, 40<<10, frame)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("truncated: %v, want %q…", err, want)
	}
}

// payloadCopy runs for every record tail prints in order (-f, -n N,
// --from, --since): with buf reused it allocates nothing, its check of
// the copy included. It allocated once a call while its
// *MappingFault, whose address goes to errors.As, was declared outside
// the error path (the compiler moves it to the heap).
func TestPayloadCopyAllocatesNothing(t *testing.T) {
	dir := t.TempDir()
	_, offs := sealedSegment(t, dir, 1, func(int) []byte { return bytes.Repeat([]byte("x"), 100) })
	_, rec := recordAt(t, dir, offs[0])
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		r := rec
		var err error
		if buf, err = payloadCopy(buf, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("payloadCopy: %v allocations per record, want 0", allocs)
	}
}

// truncateOnFirstWrite is tail's stdout: on the first write it truncates
// the file at path to size, as an operator or a damaged file system might.
// With restore, the bytes cut from the next page boundary on are then
// written back in place: the rest of the cut page reads as zeros, the
// pages after it as before (a restore that skipped the partial page, or
// a hole punched there). With change, it calls change instead.
type truncateOnFirstWrite struct {
	t       *testing.T
	path    string
	size    int64
	restore bool
	change  func() error
	done    bool
	out     bytes.Buffer
}

func (w *truncateOnFirstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		change := w.change
		if change == nil {
			change = func() error { return testfs.CutFile(w.path, w.size, w.restore) }
		}
		if err := change(); err != nil {
			w.t.Error(err)
		}
	}
	return w.out.Write(p)
}

// One segment truncated while the in-order path prints it is one segment
// that could not be read, named once by tail (its file and an offset with
// no data) and once by the reader. tail counted every buffered record
// whose payload faulted as an unreadable segment, one stderr line each,
// and the reader's own report once more: "65 segments could not be read"
// for one file.
func TestTruncatedSegmentCountedOnce(t *testing.T) {
	dir := t.TempDir()
	path, _ := sealedSegment(t, dir, 300, func(int) []byte { return bytes.Repeat([]byte("p"), 4000) })
	// --from: the in-order path; tail's 256 KiB buffer is first written
	// out after ~64 records, in the middle of the reader's first batch of
	// 128; the file is cut below the rest of that batch.
	out := &truncateOnFirstWrite{t: t, path: path, size: 128 << 10}
	stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", dir)
	lines := strings.Count(stderr, "\n")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr, fmt.Sprintf("%s: 1 segment could not be read", dir)) {
		t.Errorf("one segment truncated; stderr ends %q", stderr[max(0, len(stderr)-200):])
	}
	if first := strings.SplitN(stderr, "\n", 2)[0]; !strings.HasPrefix(first, "auditseg tail: "+path+": changed while it was read (truncated?): no data at offset ") {
		t.Errorf("first stderr line %q does not name the file", first)
	}
	if lines > 3 {
		t.Errorf("%d stderr lines for one truncated segment", lines)
	}
}
