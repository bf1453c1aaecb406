package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
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
			lines := tailFromStart(t, out, dir, victim)
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

// tailFromStart runs tail --from the first record of the log in dir with
// out as its stdout, checks that it printed the printed records before
// the change and exited 2, and returns its stderr lines.
func tailFromStart(t *testing.T, out *truncateOnFirstWrite, dir string, printed int) []string {
	t.Helper()
	stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", dir)
	if n := strings.Count(out.out.String(), "\n"); n != printed || code != exitUsage {
		t.Fatalf("%d records printed, exit %d; want the %d before the change, exit %d\nstderr:\n%s", n, code, printed, exitUsage, stderr)
	}
	return strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
}

// wantLines checks that lines start with want, one for one.
func wantLines(t *testing.T, lines, want []string) {
	t.Helper()
	if len(lines) != len(want) {
		t.Fatalf("stderr:\n%s\nwant %d lines starting:\n%s", strings.Join(lines, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("stderr line %d %q, want %q…", i+1, lines[i], w)
		}
	}
}

// A record that changed after its check is reported by tail, naming it;
// when the reader's next walk starts in the zeros the cut left in the
// rest of its page, the reader reported those too, as a torn region in a
// sealed segment ("non-zero bytes where no frame was written (the commit
// word is zero; …)"): the same damage twice, in other words. Here the
// cut is inside record 383, the last of the reader's batch of 256 to 383,
// in the page where record 384 starts, and the file is written back from
// the next page on. The torn line is folded into tail's report of the
// record; damage of its own further on (record 395's payload flipped
// before tail ran) is still reported.
func TestTailChangedRecordDamageReportedOnce(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 400, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) })
	const victim, other = 383, 395
	if err := flipByte(path, offs[other]+segment.FrameHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	out := &truncateOnFirstWrite{t: t, path: path, size: offs[victim+1] - 40, restore: true}
	if out.size/4096 != offs[victim+1]/4096 {
		t.Fatalf("layout: the cut at %d is not in the page of record %d at %d", out.size, victim+1, offs[victim+1])
	}
	lines := tailFromStart(t, out, dir, victim)
	want := []string{
		fmt.Sprintf("auditseg tail: %s: changed while it was read (truncated?): the record at offset %d no longer matches its checksum; the record at 1:%d and the rest of the segment were not printed", path, offs[victim], offs[victim]),
		fmt.Sprintf("auditseg tail: %s: offset %d: ", path, offs[other]),
		// 388 to 399 but 395: the page of zeros held records 384 to 387.
		fmt.Sprintf("%s: 1 segment could not be read (see above); 11 records read after a record that changed were not printed", dir),
	}
	wantLines(t, lines, want)
}

// Damage adjacent to a changed record that does not start with zeros is
// not the change seen again: a record written to in place (a byte of
// record 300 flipped at tail's first write, no cut) right before a torn
// one (record 301's payload flipped before tail ran) is reported, and so
// is the torn record after it.
func TestTailChangedRecordAdjacentDamageReported(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 400, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i%26)}, 1000) })
	const victim = 300
	if err := flipByte(path, offs[victim+1]+segment.FrameHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	out := &truncateOnFirstWrite{t: t, change: func() error { return flipByte(path, offs[victim]+segment.FrameHeaderSize+10) }}
	lines := tailFromStart(t, out, dir, victim)
	want := []string{
		fmt.Sprintf("auditseg tail: %s: changed while it was read (truncated?): the record at offset %d ", path, offs[victim]),
		fmt.Sprintf("auditseg tail: %s: offset %d: frame checksum mismatch", path, offs[victim+1]),
		fmt.Sprintf("%s: 1 segment could not be read (see above); 98 records read after a record that changed were not printed", dir),
	}
	wantLines(t, lines, want)
}

// flipByte inverts the byte at off in the file at path, in place.
func flipByte(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	return err
}

// The bulk replay (sealed segments read from their start: -n +1,
// --since, with -f too) cannot hand out a record whose copy failed its
// CRC after its walk checked it: it reports it, a
// DamageSegment wrapping segment.ErrChangedAfterCheck, as the in-order
// path's payloadCopy finds it (reader's TestBulkChangedRecordReportedAsChanged),
// and reads on after it. tail must then answer as in order: the same line,
// the rest of the segment skipped (the readable records counted), exit 2
// and the cursor kept. Here record 1 of 4 is written to in place after
// the reader checked it; the in-order half copies it, the bulk half is
// given the reader's report of it.
func TestTailBulkChangedRecordAsInOrder(t *testing.T) {
	dir := t.TempDir()
	path, offs := sealedSegment(t, dir, 4, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i)}, 100) })
	const victim = 1
	// Both readers check the record before it changes.
	rIn, recIn := recordAt(t, dir, offs[victim])
	rBulk, _ := recordAt(t, dir, offs[victim])
	if err := flipByte(path, offs[victim]+segment.FrameHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	answer := func(r *reader.Reader, report func(*tailReports)) (string, int, error) {
		var stderr bytes.Buffer
		rep := &tailReports{out: bufio.NewWriter(io.Discard), stderr: &stderr}
		report(rep)
		for r.Next() {
			if rec := r.Record(); !rep.faulted.skip(&rec) {
				t.Errorf("record %v after the changed one not skipped", rec.Position)
			}
		}
		return stderr.String(), rep.unreadable, rep.closing(dir)
	}
	inOrder, inUnreadable, inErr := answer(rIn, func(rep *tailReports) {
		_, err := payloadCopy(nil, &recIn)
		if !errors.Is(err, segment.ErrChangedAfterCheck) {
			t.Fatalf("copy of the changed record: %v", err)
		}
		rep.changed(recIn.Position.Seq, err)
	})
	bulk, bulkUnreadable, bulkErr := answer(rBulk, func(rep *tailReports) {
		rep.damage(reader.Damage{Kind: reader.DamageSegment, Path: path, Seq: 1, Offset: offs[victim], Len: offs[victim+1] - offs[victim],
			Err: &segment.ChangedError{Path: path, While: "read", Off: offs[victim], Err: segment.ErrChangedAfterCheck}})
	})
	if bulk != inOrder {
		t.Errorf("bulk stderr %q, in order %q", bulk, inOrder)
	}
	if bulkUnreadable != 1 || inUnreadable != 1 {
		t.Errorf("unreadable segments: bulk %d, in order %d; want 1 (the cursor is not stored)", bulkUnreadable, inUnreadable)
	}
	want := fmt.Sprintf("%s: 1 segment could not be read (see above); 2 records read after a record that changed were not printed", dir)
	for _, e := range []error{inErr, bulkErr} {
		if e == nil || e.Error() != want || exitCode(e) != exitUsage {
			t.Errorf("closing %v (exit %d), want %q (exit %d)", e, exitCode(e), want, exitUsage)
		}
	}
}
