package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailCursorPastTheCommittedEnd: a cursor file past the last record
// of a segment still being written (records a run printed, then lost by
// the machine before they were flushed; or a file edited) was taken as
// "after it": the records the writer appended later between the last
// record and that position were passed over silently, by that run and
// every later one. tail warns, naming the file, the position and the
// segment's last record, and resumes after that record: nothing the log
// holds is skipped.
func TestTailCursorPastTheCommittedEnd(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var last segment.Position
	for _, s := range []string{"a", "b", "c"} {
		if last, err = w.Append([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	past := segment.Position{Seq: 1, Offset: last.Offset + 4096}
	content := fmt.Sprintf("%s %s\n", past, time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano))
	cur := filepath.Join(t.TempDir(), "cursor")
	if err := os.WriteFile(cur, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, dir)
	if code != exitOK || out != "" {
		t.Fatalf("exit %d, out %q, %s", code, out, stderr)
	}
	for _, s := range []string{cur, past.String(), "past the last record of segment 1", last.String()} {
		if !strings.Contains(stderr, s) {
			t.Errorf("%q does not say %q", stderr, s)
		}
	}
	moved := fmt.Sprintf("%s %s\n", last, time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano))
	if b, _ := os.ReadFile(cur); string(b) != moved {
		t.Errorf("cursor file holds %q; want %q, moved back to the last record", b, moved)
	}
	// The writer goes on: its next records land between the last one and
	// the cursor's position, and after it.
	var want strings.Builder
	for i := range 300 {
		rec := fmt.Sprintf("r%d", i)
		if _, err := w.Append([]byte(rec)); err != nil {
			t.Fatal(err)
		}
		want.WriteString(rec + "\n")
	}
	if p, _ := w.Append([]byte("end")); p.Seq != 1 || p.Offset <= past.Offset {
		t.Fatalf("fixture: the last record at %s is not past %s in segment 1", p, past)
	}
	want.WriteString("end\n")
	out, stderr, code = execute(t, nil, "tail", "--cursor-file", cur, dir)
	if code != exitOK || out != want.String() {
		t.Fatalf("exit %d, %d bytes printed, want %d (first %.20q)\n%s", code, len(out), want.Len(), out, stderr)
	}
	if b, _ := os.ReadFile(cur); string(b) == content {
		t.Errorf("cursor file not updated: %q", b)
	}
}

// TestTailCursorPastAnEmptySegment: a cursor past the end of a segment
// that holds no record has no record to move back to: refused (exit 2),
// the file left as it was, saying how to resume at the segment's start.
func TestTailCursorPastAnEmptySegment(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	h, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("1:4096 %s\n", time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano))
	cur := filepath.Join(t.TempDir(), "cursor")
	if err := os.WriteFile(cur, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, dir)
	if code != exitUsage || out != "" {
		t.Fatalf("exit %d, out %q, %s", code, out, stderr)
	}
	for _, s := range []string{cur, "1:4096", "holds no record", "--from 1:0"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("%q does not say %q", stderr, s)
		}
	}
	if b, _ := os.ReadFile(cur); string(b) != content {
		t.Errorf("cursor file now %q", b)
	}
}
