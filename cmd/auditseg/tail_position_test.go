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

// writeBig writes n records of 8 KB ("I x...") to a log of segments of
// the smallest size at dir: 7 to a segment.
func writeBig(t *testing.T, dir string, n int) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := w.Append([]byte(fmt.Sprintf("%d %s", i, strings.Repeat("x", 8000)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// positionLog writes a log of two sealed segments of the smallest size
// and returns its directory and the header of segment 1.
func positionLog(t *testing.T) (string, segment.Header) {
	t.Helper()
	dir := t.TempDir()
	writeBig(t, dir, 12)
	h, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segment.FileName(2))); err != nil {
		t.Fatalf("fixture: want two segments: %v", err)
	}
	return dir, h
}

// TestTailFromOutsideRecordArea: a --from offset in the footer or past the
// end of its segment's file can name no record of it; it was taken as "at
// or after" and tail went on silently with the next segment. It is refused
// (exit 2), naming the flag, the position and the segment's record area.
// Offsets inside the record area keep their documented meaning.
func TestTailFromOutsideRecordArea(t *testing.T) {
	dir, h := positionLog(t)
	area := fmt.Sprintf("offsets %d to %d", segment.HeaderSize, segment.RecordLimit(h.Size)-1)
	seg1 := filepath.Join(dir, segment.FileName(1))
	for _, tc := range []struct {
		target, pos, where string
	}{
		{dir, "1:999999", "past the end"},
		{dir, fmt.Sprintf("1:%d", h.Size), "past the end"},
		{dir, fmt.Sprintf("1:%d", segment.RecordLimit(h.Size)), "footer"},
		{dir, fmt.Sprintf("1:%d", h.Size-8), "footer"},
		{seg1, "1:999999", "past the end"}, // one segment file
	} {
		out, stderr, code := execute(t, nil, "tail", "-o", "json", "--from", tc.pos, tc.target)
		if code != exitUsage || out != "" {
			t.Errorf("--from %s %s: exit %d, out %.60q, %s", tc.pos, tc.target, code, out, stderr)
			continue
		}
		for _, s := range []string{"--from " + tc.pos, tc.where, area, seg1} {
			if !strings.Contains(stderr, s) {
				t.Errorf("--from %s %s: %q does not say %q", tc.pos, tc.target, stderr, s)
			}
		}
	}
	// Inside the record area: the first record at or after the position,
	// as documented; SEQ:0 is the start of segment SEQ.
	for _, tc := range []struct{ pos, first string }{
		{"1:0", `"position":"1:64"`},
		{"1:65", `"position":"1:8`}, // the second record, past the first's 8 KB
		{fmt.Sprintf("1:%d", segment.RecordLimit(h.Size)-8), `"position":"2:64"`},
	} {
		out, stderr, code := execute(t, nil, "tail", "-o", "json", "--from", tc.pos, dir)
		if code != exitOK || !strings.HasPrefix(out, `{`+tc.first) {
			t.Errorf("--from %s: exit %d, out starts %.60q, %s", tc.pos, code, out, stderr)
		}
	}
}

// TestTailCursorOutsideRecordArea: tail stores a record's position in
// its cursor file, so one in a segment's header, not on a frame boundary
// (8-byte aligned), in its footer or past its end was never stored by
// tail: a damaged or hand-edited file. It was taken as is, and one past
// the record area skipped the rest of the segment silently. Refused
// (exit 2), naming the file, the position and what is valid; the file is
// left as it was.
func TestTailCursorOutsideRecordArea(t *testing.T) {
	dir, h := positionLog(t)
	created := time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano)
	area := fmt.Sprintf("offsets %d to %d", segment.HeaderSize, segment.RecordLimit(h.Size)-1)
	cur := filepath.Join(t.TempDir(), "cursor")
	for _, tc := range []struct{ pos, why string }{
		{"1:1000000", area},
		{fmt.Sprintf("1:%d", segment.RecordLimit(h.Size)), area},
		{"1:0", "not a record's position"},
		{"1:4099", "not a record's position"},
	} {
		for _, content := range []string{tc.pos + " " + created + "\n", tc.pos + "\n"} {
			if err := os.WriteFile(cur, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, dir)
			if code != exitUsage || out != "" {
				t.Errorf("cursor %q: exit %d, out %.40q, %s", content, code, out, stderr)
				continue
			}
			for _, s := range []string{cur, tc.pos, tc.why} {
				if !strings.Contains(stderr, s) {
					t.Errorf("cursor %q: %q does not say %q", content, stderr, s)
				}
			}
			if b, _ := os.ReadFile(cur); string(b) != content {
				t.Errorf("cursor %q: file now %q", content, b)
			}
		}
	}
}

// TestTailFromRemovedSegment: `tail --from` at a position in a segment
// retention removed starts at the oldest segment there, and says which
// segments' records it could not read. It said nothing: a replay from a
// position kept elsewhere (a consumer's own record of where it was) lost
// the records up to the oldest segment without a word, where a cursor
// file at the same position is warned of. A position in a segment that is
// there, or segment 0 (before any), gets no warning, nor does --from when
// a cursor file holds the position. (With -f the warning comes from the
// same check, made before the follow starts.)
func TestTailFromRemovedSegment(t *testing.T) {
	dir := t.TempDir()
	pos := timedLog(t, dir, 7000, time.Unix(1_700_000_000, 0))
	if pos[len(pos)-1].Seq < 4 {
		t.Fatalf("only %d segments", pos[len(pos)-1].Seq)
	}
	for _, s := range []uint64{1, 2} {
		if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
	first := 0 // the first record of segment 3
	for pos[first].Seq < 3 {
		first++
	}
	want := recLines(first, len(pos))
	for _, tc := range []struct{ from, warn string }{
		{"1:64", fmt.Sprintf("auditseg tail: warning: --from 1:64: segments 1 to 2 are no longer in %s (removed by retention?): their records from 1:64 on were not read; starting at segment 3, the oldest there\n", dir)},
		{"2:128", fmt.Sprintf("auditseg tail: warning: --from 2:128: segment 2 is no longer in %s (removed by retention?): its records from 2:128 on were not read; starting at segment 3, the oldest there\n", dir)},
		{"3:0", ""},
		{"0:0", ""},
	} {
		out, stderr, code := execute(t, nil, "tail", "--from", tc.from, dir)
		if code != exitOK || out != want || stderr != tc.warn {
			t.Errorf("--from %s: exit %d, %d bytes printed (want %d), stderr %q, want %q", tc.from, code, len(out), len(want), stderr, tc.warn)
		}
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	if err := os.WriteFile(cur, []byte(pos[first].String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := execute(t, nil, "tail", "--from", "1:64", "--cursor-file", cur, dir)
	if code != exitOK || out != recLines(first+1, len(pos)) || stderr != "" {
		t.Errorf("with a cursor file: exit %d, %d bytes printed, stderr %q, want no warning", code, len(out), stderr)
	}
}
