package reader_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

func TestReadAllAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	want := writeLog(t, dir, 6000, false)
	if want[len(want)-1].pos.Seq < 5 {
		t.Fatalf("fixture spans only %d segments", want[len(want)-1].pos.Seq)
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Fatalf("damage on a clean log: %v", dmg)
	}
}

func TestEmptyAndMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	got, dmg := readAll(t, dir, reader.Options{Start: reader.Last(10)})
	if len(got) != 0 || len(dmg) != 0 {
		t.Fatalf("empty log: %d records, %v", len(got), dmg)
	}
	_, err := reader.Open(filepath.Join(dir, "nope"), reader.Options{})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("missing directory: err = %v, want one naming it", err)
	}
}

func TestStartPositions(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 2500, false)
	mid := all[1234]
	cases := []struct {
		name string
		opts reader.Options
		want []rec
	}{
		{"first", reader.Options{Start: reader.First()}, all},
		{"at exact", reader.Options{Start: reader.At(mid.pos)}, all[1234:]},
		{"after exact", reader.Options{Start: reader.After(mid.pos)}, all[1235:]},
		{"at inside a frame", reader.Options{Start: reader.At(segment.Position{Seq: mid.pos.Seq, Offset: mid.pos.Offset + 8})}, all[1235:]},
		{"after inside a frame", reader.Options{Start: reader.After(segment.Position{Seq: mid.pos.Seq, Offset: mid.pos.Offset + 8})}, all[1235:]},
		{"at missing segment before all", reader.Options{Start: reader.At(segment.Position{Seq: 0, Offset: 0})}, all},
		{"at past the end", reader.Options{Start: reader.At(segment.Position{Seq: 999, Offset: 64})}, nil},
		{"at huge offset", reader.Options{Start: reader.At(segment.Position{Seq: mid.pos.Seq, Offset: 1<<63 - 1})}, firstOfSeg(all, mid.pos.Seq+1)},
		{"after last", reader.Options{Start: reader.After(all[len(all)-1].pos)}, nil},
		{"last 0", reader.Options{Start: reader.Last(0)}, nil},
		{"last 1", reader.Options{Start: reader.Last(1)}, all[len(all)-1:]},
		{"last 10", reader.Options{Start: reader.Last(10)}, all[len(all)-10:]},
		{"last 1000 spans segments", reader.Options{Start: reader.Last(1000)}, all[len(all)-1000:]},
		{"last more than all", reader.Options{Start: reader.Last(1 << 40)}, all},
		{"skip 0", reader.Options{Start: reader.Skip(0)}, all},
		{"skip 1777", reader.Options{Start: reader.Skip(1777)}, all[1777:]},
		{"skip all", reader.Options{Start: reader.Skip(2500)}, nil},
		{"since", reader.Options{Since: time.Unix(0, all[2000].ts)}, all[2000:]},
		{"since between", reader.Options{Since: time.Unix(0, all[2000].ts-1)}, all[2000:]},
		{"since before all", reader.Options{Since: time.Unix(0, 0)}, all},
		{"since after all", reader.Options{Since: time.Unix(0, all[len(all)-1].ts+1)}, nil},
		// Outside the range of UnixNano (about 1678-2262), which wraps.
		{"since year 1000", reader.Options{Since: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, all},
		{"since year 3000", reader.Options{Since: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"since with at", reader.Options{Start: reader.At(mid.pos), Since: time.Unix(0, all[2000].ts)}, all[2000:]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, dmg := readAll(t, dir, tc.opts)
			sameRecs(t, got, tc.want)
			if len(dmg) != 0 {
				t.Fatalf("damage: %v", dmg)
			}
		})
	}
}

func firstOfSeg(all []rec, seq uint64) []rec {
	for i, r := range all {
		if r.pos.Seq >= seq {
			return all[i:]
		}
	}
	return nil
}

func TestSinceConflicts(t *testing.T) {
	dir := t.TempDir()
	for _, st := range []reader.Start{reader.Last(3), reader.Skip(3)} {
		if _, err := reader.Open(dir, reader.Options{Start: st, Since: time.Now()}); err == nil {
			t.Errorf("Since with %v accepted", st)
		}
	}
}

// countingLog writes sealed segments whose footers are the only way to
// learn their record counts cheaply; Last and Since must not walk them.
// Corrupting a record in an early sealed segment proves it: the reader
// would report the damage if it decoded that segment.
func TestLastAndSinceUseFooters(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 2500, false)
	corruptPayload(t, dir, all[3])
	for _, opts := range []reader.Options{{Start: reader.Last(20)}, {Since: time.Unix(0, all[2400].ts)}, {Start: reader.Skip(2000)}} {
		got, dmg := readAll(t, dir, opts)
		if len(dmg) != 0 {
			t.Fatalf("%+v: decoded an early segment: %v", opts, dmg)
		}
		if len(got) == 0 || got[len(got)-1].pos != all[len(all)-1].pos {
			t.Fatalf("%+v: wrong records", opts)
		}
	}
}

// corruptPayload flips a byte of r's payload in its segment file.
func corruptPayload(t *testing.T, dir string, r rec) string {
	t.Helper()
	p := filepath.Join(dir, segment.FileName(r.pos.Seq))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{'#'}, r.pos.Offset+segment.FrameHeaderSize+1); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTornFrameReportedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 2000, false)
	victim := all[700]
	path := corruptPayload(t, dir, victim)
	got, dmg := readAll(t, dir, reader.Options{})
	want := append(append([]rec(nil), all[:700]...), all[701:]...)
	sameRecs(t, got, want)
	if len(dmg) != 1 {
		t.Fatalf("damage = %v, want one report", dmg)
	}
	d := dmg[0]
	if d.Kind != reader.DamageTorn || d.Path != path || d.Offset != victim.pos.Offset || d.Len != all[701].pos.Offset-victim.pos.Offset {
		t.Fatalf("damage = %+v", d)
	}
	if !errors.Is(&d, segment.ErrCorrupt) || !strings.Contains(d.Error(), path) || !strings.Contains(d.Error(), "offset ") {
		t.Fatalf("damage text %q does not name the file and offset", d.Error())
	}

	// Strict stops there, with the damage as the error.
	r, err := reader.Open(dir, reader.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		n++
	}
	var sd *reader.Damage
	if n != 700 || !errors.As(r.Err(), &sd) || sd.Offset != victim.pos.Offset {
		t.Fatalf("strict: %d records, err %v", n, r.Err())
	}
}

func TestDeadWriterReservedFrameSkipped(t *testing.T) {
	dir := t.TempDir()
	b := newSeg(1)
	var want []rec
	want = append(want, b.add(baseTS, []byte("one")))
	at := b.reserve(40)
	want = append(want, b.add(baseTS+1, []byte("three")))
	b.write(t, dir)

	// No writer: the reserved frame is reported and skipped.
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageReserved || dmg[0].Offset != at || dmg[0].Len != segment.FrameSize(40) {
		t.Fatalf("damage = %+v", dmg)
	}
	if !dmg[0].Kind.CrashLeftover() {
		t.Fatal("reserved frame is not a crash leftover")
	}

	// A writer holds the lock: the frame may still be committed, so the
	// reader stops before it instead.
	lk, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	got, dmg = readAll(t, dir, reader.Options{})
	sameRecs(t, got, want[:1])
	if len(dmg) != 0 {
		t.Fatalf("damage reported while a writer is alive: %v", dmg)
	}
}

func TestDeadWriterGapAndUnfinishedSegment(t *testing.T) {
	dir := t.TempDir()
	b := newSeg(1)
	var want []rec
	want = append(want, b.add(baseTS, []byte("a")))
	gapAt := b.off
	b.off += 64 // claimed, never stored: zeros followed by a frame
	want = append(want, b.add(baseTS+1, []byte("b")))
	tailAt := b.off
	b.write(t, dir)
	c := newSeg(2)
	want = append(want, c.add(baseTS+2, []byte("c")))
	c.write(t, dir)

	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 2 || dmg[0].Kind != reader.DamageGap || dmg[0].Offset != gapAt || dmg[0].Len != 64 ||
		dmg[1].Kind != reader.DamageUnfinished || dmg[1].Offset != tailAt || dmg[1].Seq != 1 {
		t.Fatalf("damage = %+v", dmg)
	}
	// Crash residue, not loss: the message must not guess at lost bytes
	// (verify says nothing committed is missing), nor promise a next
	// segment (a dead writer's last segment is reported alike).
	if msg := dmg[1].Error(); strings.Contains(msg, "lost") || strings.Contains(msg, "next segment") || !strings.Contains(msg, "writer died") {
		t.Fatalf("unfinished segment reported as %q", msg)
	}
}

// TestSealedSegmentEndZeroed zeroes the end of the newest segment, which
// is sealed: from a record to the footer, and only the END frame. With no
// later segment, nothing but the footer says records were lost there; the
// reader must report them (and the lost END frame) as torn, as verify
// does, not take the zeros for the end of the log.
func TestSealedSegmentEndZeroed(t *testing.T) {
	for _, c := range []struct {
		name string
		keep int // records left intact in the last segment
	}{{"records and END", 5}, {"END only", -1}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			all := writeLog(t, dir, 3000, true)
			seq := all[len(all)-1].pos.Seq
			lastSeg := firstOfSeg(all, seq)
			if seq < 2 || len(lastSeg) < 10 {
				t.Fatalf("fixture: want two segments or more, with records in the last, got records up to %v", all[len(all)-1].pos)
			}
			path := filepath.Join(dir, segment.FileName(seq))
			img, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := segment.DecodeHeader(img)
			f, err := segment.DecodeFooter(img, h)
			if err != nil {
				t.Fatal(err)
			}
			from, want := f.EndOffset, all
			if c.keep >= 0 {
				from = lastSeg[c.keep].pos.Offset
				want = all[:len(all)-len(lastSeg)+c.keep]
			}
			clear(img[from : int64(len(img))-segment.FooterSize])
			if err := os.WriteFile(path, img, 0o640); err != nil {
				t.Fatal(err)
			}
			got, dmg := readAll(t, dir, reader.Options{})
			sameRecs(t, got, want)
			limit := segment.RecordLimit(int64(len(img)))
			if len(dmg) != 1 || dmg[0].Kind != reader.DamageTorn || dmg[0].Seq != seq || dmg[0].Offset != from || dmg[0].Len != limit-from {
				t.Fatalf("damage = %+v, want one torn report at %d:%d for %d bytes", dmg, seq, from, limit-from)
			}
			if msg := dmg[0].Error(); !errors.Is(&dmg[0], segment.ErrCorrupt) || !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprint(f.EndOffset)) {
				t.Fatalf("damage text %q does not name the file and the footer's end offset", msg)
			}
		})
	}
}

// TestBadSegmentsReportedAndSkipped: a destroyed header is reported and
// its segment still read, frame by frame under the file name's sequence;
// a file too damaged for that (no valid segment size either) is skipped,
// and a removed one is missing.
func TestBadSegmentsReportedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 6000, false)
	// Segment 2: header destroyed. Segment 3: header destroyed and the
	// file cut to no segment size. Segment 4: removed.
	p2, p3 := filepath.Join(dir, segment.FileName(2)), filepath.Join(dir, segment.FileName(3))
	for _, p := range []string{p2, p3} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("NOTASEGM"), 0); err != nil {
			t.Fatal(err)
		}
		if p == p3 {
			if err := f.Truncate(1000); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	if err := os.Remove(filepath.Join(dir, segment.FileName(4))); err != nil {
		t.Fatal(err)
	}
	var want []rec
	for _, r := range all {
		if r.pos.Seq != 3 && r.pos.Seq != 4 {
			want = append(want, r)
		}
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 3 || dmg[0].Kind != reader.DamageSegment || dmg[0].Path != p2 || !strings.Contains(dmg[0].Error(), p2+": offset 0: bad magic") ||
		!strings.Contains(dmg[0].Error(), "read one by one") ||
		dmg[1].Kind != reader.DamageSegment || dmg[1].Path != p3 || strings.Contains(dmg[1].Error(), "read one by one") ||
		dmg[2].Kind != reader.DamageMissing || dmg[2].Seq != 4 || dmg[2].Len != 1 {
		t.Fatalf("damage = %+v", dmg)
	}
	for _, d := range dmg {
		if d.Kind.CrashLeftover() {
			t.Errorf("%v counted as a crash leftover", d.Kind)
		}
	}
}

func TestTruncatedSegmentReadsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 2000, false)
	p := filepath.Join(dir, segment.FileName(1))
	var cut int64 = 4096
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	var want []rec
	for _, r := range all {
		if r.pos.Seq != 1 || r.pos.Offset+segment.FrameSize(len(r.payload)) <= cut {
			want = append(want, r)
		}
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) < 2 || dmg[0].Kind != reader.DamageSegment || dmg[0].Offset != cut {
		t.Fatalf("damage = %+v", dmg)
	}
}

func TestSingleSegmentFile(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 2000, true)
	var want []rec
	for _, r := range all {
		if r.pos.Seq == 2 {
			want = append(want, r)
		}
	}
	got, _ := readAll(t, filepath.Join(dir, segment.FileName(2)), reader.Options{})
	sameRecs(t, got, want)
	got, _ = readAll(t, filepath.Join(dir, segment.FileName(2)), reader.Options{Start: reader.Last(3)})
	sameRecs(t, got, want[len(want)-3:])

	// A copy under another name is placed by its header's sequence, as
	// its records' positions are: At and After one of them resume there,
	// a position in a later segment gives nothing, an earlier one all.
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(2)))
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy.seg")
	if err := os.WriteFile(cp, data, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start reader.Start
		want  []rec
	}{
		{reader.First(), want},
		{reader.At(want[5].pos), want[5:]},
		{reader.After(want[5].pos), want[6:]},
		{reader.At(segment.Position{Seq: 3, Offset: 64}), nil},
		{reader.After(segment.Position{Seq: 1, Offset: 1 << 20}), want},
	} {
		got, _ := readAll(t, cp, reader.Options{Start: tc.start})
		sameRecs(t, got, tc.want)
	}
}

func TestArchivedSegmentsRead(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 6000, true)
	for _, seq := range []uint64{1, 3} {
		p := filepath.Join(dir, segment.FileName(seq))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		archiveSegment(t, dir, seq, data)
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, all)
	if len(dmg) != 0 {
		t.Fatalf("damage: %v", dmg)
	}
	got, _ = readAll(t, dir, reader.Options{Start: reader.After(all[100].pos)})
	sameRecs(t, got, all[101:])
}

// TestDuplicateReportedOnce: with both a segment and its archive present
// the original is read, each record once, and the pair is reported once.
func TestDuplicateReportedOnce(t *testing.T) {
	dir := t.TempDir()
	all := writeLog(t, dir, 6000, true)
	orig := filepath.Join(dir, segment.FileName(2))
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	archiveSegment(t, dir, 2, data)
	if err := os.WriteFile(orig, data, 0o640); err != nil {
		t.Fatal(err)
	}
	var dups []string
	got, dmg := readAll(t, dir, reader.Options{OnDuplicate: func(o, a string) { dups = append(dups, o, a) }})
	sameRecs(t, got, all)
	if len(dmg) != 0 {
		t.Fatalf("damage: %v", dmg)
	}
	if want := []string{orig, orig + ".zst"}; !slices.Equal(dups, want) {
		t.Fatalf("duplicates reported %q, want %q", dups, want)
	}
}

func TestRecordClone(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3, false)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() {
		t.Fatal("no record")
	}
	c, err := r.Record().Clone()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Payload) != string(payload(0)) {
		t.Fatalf("clone = %q", c.Payload)
	}
}

// TestHighestSequenceNumbers: the reader ends after the segment numbered
// MaxUint64 instead of wrapping around to the first one.
func TestHighestSequenceNumbers(t *testing.T) {
	dir := t.TempDir()
	var want []rec
	for _, seq := range []uint64{math.MaxUint64 - 1, math.MaxUint64} {
		b := newSeg(seq)
		want = append(want, b.add(baseTS, []byte(fmt.Sprint(seq))))
		b.seal(t, [segment.DigestSize]byte{})
		b.write(t, dir)
	}
	got, dmg := readAll(t, dir, reader.Options{})
	sameRecs(t, got, want)
	if len(dmg) != 0 {
		t.Fatalf("damage: %v", dmg)
	}
	got, _ = readAll(t, dir, reader.Options{Since: time.Unix(0, baseTS+1)})
	sameRecs(t, got, nil)
	got, _ = readAll(t, dir, reader.Options{Start: reader.After(want[1].pos)})
	sameRecs(t, got, nil)
}

// A position inside a record's payload never yields a frame forged inside
// that payload (found by a CLI review: tail --from at the forged offset
// printed "FORGED: user=root action=grant", and verify passed the log):
// At and After start at the first real record at or after the position.
func TestSeekIgnoresFrameForgedInPayload(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	first := []byte("one")
	p1, err := w.Append(first)
	if err != nil {
		t.Fatal(err)
	}
	// The second record's payload starts at F; it holds a complete DATA
	// frame built for offset F of this segment, with its CRC.
	r2 := p1.Offset + segment.FrameSize(len(first))
	f := r2 + segment.FrameHeaderSize
	scratch := make([]byte, segment.MinSegmentSize)
	forged := []byte("FORGED: user=root action=grant")
	end := segment.PutFrame(scratch, p1.Seq, f, segment.TypeData, 1, forged)
	p2, err := w.Append(scratch[f:end])
	if err != nil || p2.Offset != r2 {
		t.Fatalf("second record at %v (want offset %d): %v", p2, r2, err)
	}
	p3, err := w.Append([]byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	at := segment.Position{Seq: p1.Seq, Offset: f}
	for _, st := range []reader.Start{reader.At(at), reader.After(at)} {
		r, err := reader.Open(dir, reader.Options{Start: st})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() || r.Record().Position != p3 || string(r.Record().Payload) != "two" {
			t.Fatalf("start %+v: first record %v %q, want %v \"two\"", st, r.Record().Position, r.Record().Payload, p3)
		}
		r.Close()
	}
}
