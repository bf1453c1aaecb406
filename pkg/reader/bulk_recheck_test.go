package reader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// The bulk path checks most records in the copy a worker read with pread
// and formats them from it, but some are checked in the segment's mapping
// and formatted from it afterwards: the frames after a damaged one
// (decoded in batches first), and every frame of a file the worker could
// not open again. A cut inside a page between the check and the format
// reads as zeros to the end of that page, without a fault. In the tests
// below Bulk.Append cuts the file inside the next record's payload,
// which the walk has checked by then: that record must not be printed.

// recheckLog writes sealed segments 1 and 2 into dir (sealedPair), each
// with n records of 1000 bytes, so that frames are 1024 bytes long and
// record k starts at HeaderSize + 1024k; each record bad of segment 1
// has a payload byte changed (its CRC fails). It returns the records.
func recheckLog(t *testing.T, dir string, n int, bad ...int) [2][]faultRec {
	t.Helper()
	out := sealedPair(t, dir, func(seq uint64, i int, _ int64) []byte {
		if i == n {
			return nil
		}
		return bytes.Repeat([]byte{byte('a' + int(seq)*8 + i)}, 1000)
	})
	// After sealing, which refuses a damaged frame.
	f, err := os.OpenFile(filepath.Join(dir, segment.FileName(1)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, k := range bad {
		if _, err := f.WriteAt([]byte{'!'}, out[0][k].pos.Offset+segment.FrameHeaderSize+10); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// recheckCut is where a test cuts the file of record w: 500 bytes into
// its payload, which lies in one page with its header.
func recheckCut(t *testing.T, w faultRec) int64 {
	t.Helper()
	ps := int64(os.Getpagesize())
	cut := w.pos.Offset + segment.FrameHeaderSize + 500
	if cut%ps == 0 || w.pos.Offset/ps != (w.end()-1)/ps {
		t.Fatalf("layout: record at %v, cut at %d", w.pos, cut)
	}
	return cut
}

// recheckRead reads the log in dir with opts, bulk output and records
// from Next alike as faultLine prints them (a record from Next copied
// with AppendPayload, as tail copies it), and returns the output and the
// damage reported.
func recheckRead(t *testing.T, dir string, opts Options, before func(*Reader)) (string, []Damage) {
	t.Helper()
	var (
		got []byte
		dmg []Damage
	)
	opts.OnDamage = func(d Damage) { dmg = append(dmg, d) }
	opts.Bulk.Write = func(b []byte, _ Position) error {
		got = append(got, b...)
		return nil
	}
	r, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if before != nil {
		before(r)
	}
	var p []byte
	for r.Next() {
		rec := r.Record()
		if p, err = rec.AppendPayload(p[:0]); err != nil {
			dmg = append(dmg, Damage{Kind: DamageSegment, Path: "AppendPayload", Offset: rec.Position.Offset, Err: err})
			continue
		}
		got = faultLine(got, rec.Position, p)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return string(got), dmg
}

// wantRecheck checks that got holds the lines of want, in order and once,
// and that the file at path is reported as a file that changed while it
// was read from cutRec on, as a fault there is.
func wantRecheck(t *testing.T, got string, want []faultRec, dmg []Damage, path string, cutRec faultRec) {
	t.Helper()
	var w []byte
	for _, r := range want {
		w = faultLine(w, r.pos, r.payload)
	}
	if got != string(w) {
		t.Fatalf("output differs from every record but the cut one and those after it in its segment (%d NUL bytes printed): %s",
			strings.Count(got, "\\x00"), shortDiff(got, string(w)))
	}
	var ce *segment.ChangedError
	for _, d := range dmg {
		if d.Kind == DamageSegment && d.Path == path && d.Offset == cutRec.pos.Offset && errors.As(d.Err, &ce) && ce.Path == path {
			return
		}
	}
	t.Fatalf("damage %v; want the file reported as changed from the cut record, at %d", dmg, cutRec.pos.Offset)
}

// The frames after a damaged one are walked in a batch from the mapping
// (segment.WalkBatch) and formatted afterwards. Segment 1: records 0-6,
// record 4 damaged, 5 and 6 in one page with the END frame; formatting
// record 5 cuts the file inside record 6's payload.
func TestBulkAfterDamageCutBeforeFormat(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	recs := recheckLog(t, dir, 7, 4)
	path := filepath.Join(dir, segment.FileName(1))
	victim := recs[0][6]
	cut := recheckCut(t, victim)
	got, dmg := readChangedAt(t, dir, recs[0][5].pos, func() error { return os.Truncate(path, cut) })
	want := append(append(recs[0][:4:4], recs[0][5]), recs[1]...)
	wantRecheck(t, got, want, dmg, path, victim)
	if len(dmg) == 0 || dmg[0].Kind != DamageTorn || dmg[0].Offset != recs[0][4].pos.Offset {
		t.Fatalf("damage %v; want the damaged record first", dmg)
	}
}

// readChangedAt reads the log in dir in bulk with one worker (recheckRead),
// calling change once as it formats the record at pos.
func readChangedAt(t *testing.T, dir string, pos Position, change func() error) (string, []Damage) {
	t.Helper()
	var (
		once sync.Once
		terr error
	)
	got, dmg := recheckRead(t, dir, Options{Bulk: &Bulk{Workers: 1,
		Append: func(dst []byte, p Position, _ int64, payload []byte) []byte {
			if p == pos {
				once.Do(func() { terr = change() })
			}
			return faultLine(dst, p, payload)
		},
	}}, nil)
	if terr != nil {
		t.Fatal(terr)
	}
	return got, dmg
}

// TestBulkChangedRecordReportedAsChanged: a record the bulk walk checked
// in the mapping whose copy then failed its CRC was seen whole and changed
// since, as a record Next returned whose AppendPayload fails. The range
// was read again in order, as the file is now, which, the file written
// back from the next page on, found the record torn over the zeros the cut
// left in its page and reported damage of the log (tail: exit 1, cursor
// stored past it) where the in-order path reports the file changed while
// it was read (exit 2, cursor kept: the record may be whole again for the
// next run). Now the bulk path reports it so too, and reads on in order
// after it, as the file is now, as Next would. Segment 1 holds records
// 0-11, records 4 and 10 damaged; formatting record 5 cuts the file
// inside record 6's payload, the rest of that page (and the start of
// record 7) reading as zeros. Left cut, the walk after record 6 faults:
// the file changed from there. Written back, the zeros after record 6 are
// torn up to record 8 (Zeros: the cut seen again, which tail folds), and
// 8, 9, 11 are read, record 10's damage reported as before.
func TestBulkChangedRecordReportedAsChanged(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	for _, restore := range []bool{false, true} {
		dir := t.TempDir()
		recs := recheckLog(t, dir, 12, 4, 10)
		path := filepath.Join(dir, segment.FileName(1))
		victim := recs[0][6]
		cut := recheckCut(t, victim)
		if ps := int64(os.Getpagesize()); recs[0][7].pos.Offset/ps != cut/ps || recs[0][8].pos.Offset/ps == cut/ps {
			t.Fatalf("layout: record 7 at %v, 8 at %v, cut at %d", recs[0][7].pos, recs[0][8].pos, cut)
		}
		got, dmg := readChangedAt(t, dir, recs[0][5].pos, func() error { return testfs.CutFile(path, cut, restore) })
		if len(dmg) < 2 || dmg[0].Kind != DamageTorn || dmg[0].Offset != recs[0][4].pos.Offset {
			t.Fatalf("restore %v: damage %v; want record 4 torn first", restore, dmg)
		}
		var ce *segment.ChangedError
		if d := dmg[1]; d.Kind != DamageSegment || d.Offset != victim.pos.Offset || !errors.Is(d.Err, segment.ErrChangedAfterCheck) ||
			!errors.As(d.Err, &ce) || ce.Path != path || ce.Off != victim.pos.Offset {
			t.Fatalf("restore %v: second report %v; want record 6 changed while it was read, as AppendPayload says", restore, &d)
		}
		keep := []int{0, 1, 2, 3, 5}
		rest := dmg[2:]
		if restore {
			keep = append(keep, 8, 9, 11)
			ok := len(rest) == 2 && rest[0].Kind == DamageTorn && rest[0].Zeros() && rest[0].Offset == recs[0][7].pos.Offset &&
				rest[0].Len == recs[0][8].pos.Offset-recs[0][7].pos.Offset &&
				rest[1].Kind == DamageTorn && rest[1].Offset == recs[0][10].pos.Offset
			if !ok {
				t.Fatalf("written back: damage after the change %v; want the zeros from record 7 to 8, then record 10 torn", rest)
			}
		} else if len(rest) != 1 || rest[0].Kind != DamageSegment || rest[0].Offset != recs[0][7].pos.Offset {
			t.Fatalf("cut: damage after the change %v; want the file changed from record 7", rest)
		}
		var want []byte
		for _, k := range keep {
			want = faultLine(want, recs[0][k].pos, recs[0][k].payload)
		}
		for _, w := range recs[1] {
			want = faultLine(want, w.pos, w.payload)
		}
		if got != string(want) {
			t.Fatalf("restore %v: output differs: %s", restore, shortDiff(got, string(want)))
		}
	}
}

// A file the worker cannot open again (removed since the reader mapped
// it) is walked in the mapping, three frames checked at a time before
// they are formatted. Segment 1 is read by Next (the read starts inside
// it) while segment 2 is prefetched; segment 2 is then removed, and
// formatting its record 4 cuts it (through a descriptor kept open) inside
// record 5's payload, the last of the first range.
func TestBulkUnreopenableCutBeforeFormat(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	recs := recheckLog(t, dir, 10)
	victim := recs[1][5]
	// ScanData checks records 3, 4 and 5 before it formats them.
	if (victim.pos.Offset-segment.HeaderSize)/segment.FrameSize(1000) != 5 {
		t.Fatalf("layout: record 5 at %v", victim.pos)
	}
	got, dmg := readUnreopenableCut(t, dir, recs, victim.end())
	want := append(recs[0][2:len(recs[0]):len(recs[0])], recs[1][:5]...)
	wantRecheck(t, got, want, dmg, filepath.Join(dir, segment.FileName(2)), victim)
}

// readUnreopenableCut reads the log recs are of from its record 1:1 in
// bulk with one worker and ranges of rng bytes, segment 2 removed once
// it is mapped (the worker cannot open it again), and formatting segment
// 2's record 4 cuts that file inside record 5's payload (recheckCut). It
// returns the output and the damage reported (recheckRead).
func readUnreopenableCut(t *testing.T, dir string, recs [2][]faultRec, rng int64) (string, []Damage) {
	t.Helper()
	path := filepath.Join(dir, segment.FileName(2))
	cut := recheckCut(t, recs[1][5])
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		once sync.Once
		terr error
	)
	got, dmg := recheckRead(t, dir, Options{Start: At(recs[0][1].pos), Bulk: &Bulk{Workers: 1, Range: rng,
		Append: func(dst []byte, pos Position, _ int64, payload []byte) []byte {
			if pos == recs[1][4].pos {
				once.Do(func() { terr = f.Truncate(cut) })
			}
			return faultLine(dst, pos, payload)
		},
	}}, func(r *Reader) {
		if !r.Next() {
			t.Fatalf("no first record: %v", r.Err())
		}
		waitMapped(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	})
	if terr != nil {
		t.Fatal(terr)
	}
	return got, dmg
}

// waitMapped waits until path is mapped in this process (the reader's
// prefetch of it).
func waitMapped(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if strings.HasSuffix(sc.Text(), " "+path) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mapped after 10s", path)
		}
		time.Sleep(time.Millisecond)
	}
}

// shortDiff says where got first differs from want, line by line, with
// lines cut short: a line holds a 1000-byte payload.
func shortDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	cut := func(l string) string { return l[:min(len(l), 24)] + "..." }
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d is %q (%d NUL), want %q", i+1, cut(g[i]), strings.Count(g[i], "\\x00"), cut(w[i]))
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g)-1, len(w)-1)
}
