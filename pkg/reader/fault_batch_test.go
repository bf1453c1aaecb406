package reader

import (
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

// faultRec is a record faultLog wrote.
type faultRec struct {
	pos     Position
	payload []byte
}

// end is where the bytes the record's CRC covers end: a walk that reads
// them all decodes the record.
func (w faultRec) end() int64 {
	return w.pos.Offset + segment.FrameHeaderSize + int64(len(w.payload))
}

// line is how the fault tests print a record, from Next or from Bulk.
func faultLine(dst []byte, pos Position, payload []byte) []byte {
	return fmt.Appendf(dst, "%v %q\n", pos, payload)
}

// faultLog writes sealed segments 1 and 2 of 16 pages into dir, each with
// records whose payloads differ, filling at least its first 5 pages. It
// returns the records of each segment.
func faultLog(t *testing.T, dir string) [2][]faultRec {
	t.Helper()
	ps := int64(os.Getpagesize())
	return sealedPair(t, dir, func(seq uint64, i int, off int64) []byte {
		if off >= 5*ps {
			return nil
		}
		return fmt.Appendf(nil, "segment %d record %d", seq, i)
	})
}

// sealedPair writes sealed segments 1 and 2 of 16 pages into dir, record
// i of segment seq, at off, with the payload next returns, until it
// returns nil. It returns the records of each segment.
func sealedPair(t *testing.T, dir string, next func(seq uint64, i int, off int64) []byte) [2][]faultRec {
	t.Helper()
	ps := int64(os.Getpagesize())
	now := time.Now().UnixNano()
	var out [2][]faultRec
	var prev [segment.DigestSize]byte
	for seq := uint64(1); seq <= 2; seq++ {
		img := segment.NewImage(seq, 16*ps, now)
		off := int64(segment.HeaderSize)
		for i := 0; ; i++ {
			p := next(seq, i, off)
			if p == nil {
				break
			}
			out[seq-1] = append(out[seq-1], faultRec{Position{Seq: seq, Offset: off}, p})
			off = segment.PutFrame(img, seq, off, segment.TypeData, now, p)
		}
		prev = sealInto(t, dir, img, off, prev, now)
	}
	return out
}

// faultWant is what a read of faultLog's log with segment 1 cut at cut
// returns: the records of segment 1 the cut left whole, then segment 2;
// and the offset of the first record of segment 1 it did not.
func faultWant(recs [2][]faultRec, cut int64) (string, int64) {
	var b []byte
	lost := int64(-1)
	for _, w := range recs[0] {
		if w.end() > cut {
			lost = w.pos.Offset
			break
		}
		b = faultLine(b, w.pos, w.payload)
	}
	for _, w := range recs[1] {
		b = faultLine(b, w.pos, w.payload)
	}
	return string(b), lost
}

// wantFaultAt checks that dmg is one report of segment 1 at path as
// changed while it was read, from offset lost, with the fault at or after
// cut.
func wantFaultAt(t *testing.T, dmg []Damage, path string, lost, cut int64) {
	t.Helper()
	var ce *segment.ChangedError
	if len(dmg) != 1 || dmg[0].Kind != DamageSegment || dmg[0].Path != path || dmg[0].Seq != 1 ||
		!errors.As(dmg[0].Err, &ce) || ce.Path != path || ce.Off < cut {
		t.Fatalf("damage %+v; want one DamageSegment of %s with a fault at or after %d", dmg, path, cut)
	}
	if dmg[0].Offset != lost {
		t.Fatalf("damage at offset %d; want %d, the first record not returned", dmg[0].Offset, lost)
	}
}

// A sealed segment truncated at a page boundary while it is read: the walk
// of the reader's next batch faults at the cut. The reader dropped every
// record of that batch, though those decoded before the fault were whole
// (their pages were there, their CRCs passed), and reported the file as
// not read from the batch's start. The records before the cut are
// returned, byte for byte and once; the report starts at the first one
// that is not.
func TestFaultMidBatchKeepsRecordsBefore(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	recs := faultLog(t, dir)
	ps := int64(os.Getpagesize())
	// A batch (of the reader's, all frames here: batch records) with
	// records on both sides of a page boundary.
	k, cut := 1, int64(0)
	for ; (k+1)*batch <= len(recs[0]); k++ {
		first, last := recs[0][k*batch], recs[0][(k+1)*batch-1]
		cut = (first.end()/ps + 1) * ps
		if cut < last.pos.Offset {
			break
		}
	}
	if (k+1)*batch > len(recs[0]) {
		t.Fatalf("no batch of %d records crosses a page boundary", len(recs[0]))
	}
	want, lost := faultWant(recs, cut)

	var dmg []Damage
	r, err := Open(dir, Options{OnDamage: func(d Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The batches before k are decoded and returned: batch k is walked
	// by the next Next, after the cut.
	var got []byte
	for range k * batch {
		if !r.Next() {
			t.Fatalf("record missing before the cut: %v", r.Err())
		}
		got = faultLine(got, r.Record().Position, r.Record().Payload)
	}
	p := filepath.Join(dir, segment.FileName(1))
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		got = faultLine(got, r.Record().Position, r.Record().Payload)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if string(got) != want {
		t.Fatalf("records returned differ from the records before the cut and segment 2: %s", lineDiff(string(got), want))
	}
	wantFaultAt(t, dmg, p, lost, cut)
}

// The bulk path reads a range whose walk faulted again in order; that
// walk dropped the records decoded before the fault, as above. Here one
// worker formats ranges of two pages of segment 1, and the file is cut
// in the middle of the second range while the first is formatted: the
// second range's walk faults, and so does the walk of it in order.
func TestBulkFaultMidRangeKeepsRecordsBefore(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	recs := faultLog(t, dir)
	ps := int64(os.Getpagesize())
	cut := 3 * ps
	want, lost := faultWant(recs, cut)
	p := filepath.Join(dir, segment.FileName(1))

	var (
		got   []byte
		dmg   []Damage
		once  sync.Once
		terr  error
		bulkN int
	)
	r, err := Open(dir, Options{
		OnDamage: func(d Damage) { dmg = append(dmg, d) },
		Bulk: &Bulk{Workers: 1, Range: 2 * ps,
			Append: func(dst []byte, pos Position, _ int64, payload []byte) []byte {
				once.Do(func() { terr = os.Truncate(p, cut) })
				return faultLine(dst, pos, payload)
			},
			Write: func(b []byte, _ Position) error {
				got = append(got, b...)
				bulkN += strings.Count(string(b), "\n")
				return nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		got = faultLine(got, r.Record().Position, r.Record().Payload)
	}
	if r.Err() != nil || terr != nil {
		t.Fatal(r.Err(), terr)
	}
	if string(got) != want {
		t.Fatalf("records returned differ from the records before the cut and segment 2: %s", lineDiff(string(got), want))
	}
	if bulkN == 0 || bulkN == strings.Count(want, "\n") {
		t.Fatalf("%d records formatted in bulk; want the first range's and segment 2's, not all", bulkN)
	}
	wantFaultAt(t, dmg, p, lost, cut)
}

// lineDiff says where got first differs from want, line by line.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g)-1, len(w)-1)
}
