package reader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// sealedLog writes segments 1 to n of MinSegmentSize into dir, sealed and
// chained, each holding recs records.
func sealedLog(t *testing.T, dir string, n, recs int) {
	t.Helper()
	payload := []byte("some record")
	now := time.Now().UnixNano()
	var prev [segment.DigestSize]byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		img := segment.NewImage(seq, segment.MinSegmentSize, now)
		off := int64(segment.HeaderSize)
		for range recs {
			off = segment.PutFrame(img, seq, off, segment.TypeData, now, payload)
		}
		prev = sealInto(t, dir, img, off, prev, now)
	}
}

// sealInto ends segment image img with END at off, seals it chained to
// prev, writes it into dir under its name, and returns its digest.
func sealInto(t *testing.T, dir string, img []byte, off int64, prev [segment.DigestSize]byte, now int64) [segment.DigestSize]byte {
	t.Helper()
	h, err := segment.DecodeHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	segment.PutEnd(img, h.Seq, off, now)
	f, err := segment.Seal(img, prev, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(h.Seq)), img, 0o640); err != nil {
		t.Fatal(err)
	}
	return f.Digest
}

// wantChanged checks that d reports the file at path as changed while it
// was read, naming an offset at or after cut, where the file now ends.
func wantChanged(t *testing.T, d Damage, path string, cut int64) {
	t.Helper()
	var mf *segment.MappingFault
	if d.Kind != DamageSegment || d.Path != path || !errors.As(d.Err, &mf) {
		t.Fatalf("damage %v (%+v); want a DamageSegment of %s with a fault", &d, d, path)
	}
	want := fmt.Sprintf("%s: changed while it was read (truncated?): no data at offset %d", path, mf.Off)
	if d.Error() != want || mf.Off < cut || mf.Off >= segment.MinSegmentSize {
		t.Fatalf("damage %q; want %q, at an offset in [%d, %d)", d.Error(), want, cut, segment.MinSegmentSize)
	}
}

// The segment being read is truncated under the reader: the walk of the
// missing pages is reported as the file changed while it was read, with
// the offset that had no data (as verify reports it), the segment is
// finished, and the next one is read.
func TestCurrentSegmentTruncated(t *testing.T) {
	dir := t.TempDir()
	const recs, cut = 1000, 16384
	sealedLog(t, dir, 2, recs)
	var dmg []Damage
	r, err := Open(dir, Options{OnDamage: func(d Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	p := filepath.Join(dir, segment.FileName(1))
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{1: 1}
	for r.Next() {
		got[r.Record().Position.Seq]++ // not the payload: it may be gone
	}
	if r.Err() != nil || len(dmg) != 1 || got[1] >= recs || got[2] != recs {
		t.Fatalf("records per segment %v, damage %v, err %v; want one report, segment 2 whole", got, dmg, r.Err())
	}
	wantChanged(t, dmg[0], p, cut)
}

// TestPrefetchedSegmentTruncated (review): 52256a3 reads the header of a
// mapped file under Guard in OpenImage, so that a file truncated after it
// was mapped costs an error, not the process. The reader's prefetch opens
// the next segment while the current one is read; a retention job (or
// anyone) truncating that file in the meantime made openSeg's first read
// of the mapping, im.Footer() (segments.go, not under Guard), raise SIGBUS
// and kill the process: the window the commit closed inside OpenImage was
// open, far wider, right after it. The reader is run in a child process so
// that a crash fails this test instead of the whole binary. The fault
// was then reported and the segment passed, every record of it lost,
// though the cut had left them all (the first 4096 bytes hold its 100
// records and END; only its footer went): a reader that came to the file
// after the cut, not through the prefetch, read them. The file is opened
// again and read as it is now: its records, and one report of it as
// shorter than its header says.
func TestPrefetchedSegmentTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	n, dmg, p := readPrefetchTruncated(t, Options{}, nil)
	if n != 300 || len(dmg) != 1 {
		t.Fatalf("%d records, damage %v; want all three segments, one report", n, dmg)
	}
	wantShort(t, dmg[0], p, 4096)
}

// wantShort checks that d reports the segment file at path as cut at
// cut, shorter than its header says.
func wantShort(t *testing.T, d Damage, path string, cut int64) {
	t.Helper()
	want := fmt.Sprintf("%s: offset %d: file is %d bytes, header says %d", path, cut, cut, segment.MinSegmentSize)
	if d.Kind != DamageSegment || d.Path != path || d.Offset != cut || d.Error() != want {
		t.Fatalf("damage %q (%+v); want a DamageSegment %q", d.Error(), d, want)
	}
}

// The bulk path takes over a prefetched image too: a read that starts at
// a position reads segment 1 in order and prefetches segment 2, which the
// bulk run then starts with (run.first). Truncated meanwhile, its footer
// read in bulkSealed faulted in the planner goroutine and killed the
// process. It is handed back to be read in order, as openSeg reads it
// (opened again, its records read), and segment 3 is read in bulk.
func TestBulkPrefetchedSegmentTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	wantBulkPrefetchTruncated(t, nil)
}

// wantBulkPrefetchTruncated runs readPrefetchTruncated (with prep) with
// the bulk path, from segment 1's first record, and checks that segments
// 1 and 2 are read in order, 3 in bulk, and segment 2 reported once, as
// cut at 4096.
func wantBulkPrefetchTruncated(t *testing.T, prep func(dir string)) {
	t.Helper()
	var bulk int
	n, dmg, p := readPrefetchTruncated(t, Options{
		Start: At(Position{Seq: 1, Offset: segment.HeaderSize}),
		Bulk: &Bulk{
			Append: func(dst []byte, _ Position, _ int64, _ []byte) []byte { return append(dst, 'r') },
			Write:  func(p []byte, _ Position) error { bulk += len(p); return nil },
		},
	}, prep)
	if n != 200 || bulk != 100 || len(dmg) != 1 {
		t.Fatalf("%d records in order, %d in bulk, damage %v; want segments 1 and 2 in order, 3 in bulk, one report", n, bulk, dmg)
	}
	wantShort(t, dmg[0], p, 4096)
}

// readPrefetchTruncated reads a log of three sealed segments of 100
// records with opts, truncating segment 2 to 4096 bytes once the reader,
// at its first record, has prefetched it. prep, if not nil, is called on
// the directory first. It returns how many records Next returned, the
// damage reported and segment 2's path.
func readPrefetchTruncated(t *testing.T, opts Options, prep func(dir string)) (int, []Damage, string) {
	t.Helper()
	dir := t.TempDir()
	sealedLog(t, dir, 3, 100)
	if prep != nil {
		prep(dir)
	}
	var dmg []Damage
	opts.OnDamage = func(d Damage) { dmg = append(dmg, d) }
	r, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	if r.pre == nil || r.pre.seq != 2 {
		t.Fatalf("no prefetch of segment 2: %+v", r.pre)
	}
	<-r.pre.done
	p := filepath.Join(dir, segment.FileName(2))
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	n := 1
	for r.Next() {
		n++
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	return n, dmg, p
}

// A Last start skips the start segment's surplus records. When that
// segment is truncated before it is read, its footer is gone with it and
// the records still to skip were taken from the next segment instead:
// records of segment 3 were silently not returned. The surplus is the
// start segment's only; the next segment is read whole.
func TestLastStartSegmentTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	const recs, cut = 1000, 16384
	sealedLog(t, dir, 3, recs)
	var dmg []Damage
	r, err := Open(dir, Options{Start: Last(recs + recs/2), OnDamage: func(d Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := filepath.Join(dir, segment.FileName(2))
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int{}
	for r.Next() {
		got[r.Record().Position.Seq]++
	}
	if r.Err() != nil || len(dmg) == 0 || got[1]+got[2] != 0 || got[3] != recs {
		t.Fatalf("records per segment %v, damage %v, err %v; want segment 3 whole, segment 2 reported", got, dmg, r.Err())
	}
	for _, d := range dmg {
		if d.Seq != 2 {
			t.Fatalf("damage %v; want reports of segment 2 only", dmg)
		}
	}
}
