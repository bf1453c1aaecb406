package speccheck

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

var kinds = map[segment.EventKind]string{
	segment.EvFrame: "frame", segment.EvEnd: "end", segment.EvReserved: "reserved",
	segment.EvGap: "gap", segment.EvTorn: "torn", segment.EvTail: "tail",
}

// TestCleanRoomAgrees holds pkg/segment, pkg/reader and pkg/verify to the
// clean-room decoder on a real log: every header, frame, footer, summary
// and link of the chain reads the same, the records are the ones written,
// and both verifiers pass it.
func TestCleanRoomAgrees(t *testing.T) {
	dir, acked := sharedLog(t)
	mine, err := checkLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !mine.Clean() {
		t.Errorf("clean-room verifier rejects a clean log: %v", mine.Problems)
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code := rep.ExitCode(true); code != 0 {
		t.Errorf("verify: exit %d, findings %v", code, rep.Findings)
	}
	names := logFiles(t, dir)
	if len(mine.Segments) != len(names) {
		t.Fatalf("clean-room decoder read %d segments of %d", len(mine.Segments), len(names))
	}
	var archived, pads, recovered int
	var records []segment.Position
	for i, name := range names {
		s := mine.Segments[i]
		compareSegment(t, filepath.Join(dir, name), s)
		if filepath.Ext(name) == ".zst" {
			archived++
		}
		if s.Sealed && s.Footer.Flags&flagRecovered != 0 {
			recovered++
		}
		for _, e := range s.Events {
			if e.Kind == "frame" && e.Frame.Type == typePad {
				pads++
			}
			if e.Kind == "frame" && e.Frame.Type == typeData {
				pos := segment.Position{Seq: s.NameSeq, Offset: e.Off}
				records = append(records, pos)
				if want, ok := acked[pos]; !ok || !bytes.Equal(want, e.Frame.Payload) {
					t.Errorf("%v: clean-room payload of %d bytes is not the record written there (%v)", pos, len(e.Frame.Payload), ok)
				}
			}
		}
	}
	if len(records) != len(acked) {
		t.Errorf("clean-room decoder read %d records, %d were written", len(records), len(acked))
	}
	if archived == 0 || pads == 0 || recovered == 0 {
		t.Errorf("the log lacks a case: %d archives, %d PAD frames, %d recovered seals", archived, pads, recovered)
	}
	compareReader(t, dir, records, acked)
	t.Logf("%d segments (%d archived, %d sealed by recovery), %d records, %d PAD frames", len(names), archived, recovered, len(records), pads)
}

// compareSegment compares the clean-room reading of one segment file with
// pkg/segment's, field by field.
func compareSegment(t *testing.T, path string, s *Segment) {
	t.Helper()
	im, err := segment.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if f, ok := compareImage(t, path, im.Data, s); ok {
		rf, err := segment.ReadFooter(path) // an archive's from its summary
		if err != nil || rf != f {
			t.Errorf("%s: ReadFooter %+v (%v), footer %+v", path, rf, err, f)
		}
	}
}

// errOffset is where a decoding error places the damage, -1 for none and
// -2 for a segment that is not sealed.
func errOffset(err error) int64 {
	var ce *segment.CorruptError
	var se *specError
	switch {
	case err == nil:
		return -1
	case err == errNotSealed, errors.Is(err, segment.ErrNoFooter):
		return -2
	case errors.As(err, &ce):
		return ce.Offset
	case errors.As(err, &se):
		return se.Off
	}
	return -3
}

// compareImage compares the clean-room reading s of a segment image with
// pkg/segment's: the header, the footer and every walk event, with every
// field of every frame. It returns pkg/segment's footer, and whether the
// segment is sealed.
func compareImage(t *testing.T, label string, img []byte, s *Segment) (segment.Footer, bool) {
	t.Helper()
	h, err := segment.DecodeHeader(img)
	_, mineErr := decodeHeader(img)
	if errOffset(err) != errOffset(mineErr) {
		t.Errorf("%s: header error %v, clean-room %v", label, err, mineErr)
	}
	if err != nil || mineErr != nil || int64(len(img)) != h.Size {
		return segment.Footer{}, false
	}
	if h.Seq != s.Header.Seq || h.Size != int64(s.Header.Size) || h.Created != s.Header.Created {
		t.Errorf("%s: header %+v, clean-room %+v", label, h, s.Header)
	}
	f, err := segment.DecodeFooter(img, h)
	_, mineErr = decodeFooter(img[len(img)-footerSize:], h.Size, h.Seq, true)
	if errOffset(err) != errOffset(mineErr) || (err == nil) != s.Sealed {
		t.Errorf("%s: footer error %v, clean-room %v", label, err, mineErr)
	}
	mf := s.Footer
	if s.Sealed && (f.Seq != mf.Seq || f.Records != mf.Records || f.EndOffset != mf.End || f.MinTime != mf.MinTime ||
		f.MaxTime != mf.MaxTime || f.SealedAt != mf.SealedAt || f.Flags != mf.Flags || f.PrevDigest != mf.Prev || f.Digest != mf.Digest) {
		t.Errorf("%s: footer %+v, clean-room %+v", label, f, mf)
	}
	compareEvents(t, label, img, h.Seq, segment.HeaderSize, s.Sealed, s.Events)
	return f, s.Sealed
}

// compareReader reads the log through pkg/reader: the same records, in the
// order the clean-room decoder found them, with the bytes written.
func compareReader(t *testing.T, dir string, records []segment.Position, acked map[segment.Position][]byte) {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	i := 0
	for r.Next() {
		rec := r.Record()
		if i >= len(records) || rec.Position != records[i] {
			t.Fatalf("reader record %d at %v, clean-room at %v", i, rec.Position, records[min(i, len(records)-1)])
		}
		if !bytes.Equal(rec.Payload, acked[rec.Position]) {
			t.Errorf("reader record at %v: payload differs", rec.Position)
		}
		i++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(records) {
		t.Errorf("reader read %d records, clean-room %d", i, len(records))
	}
}

// compareEvents compares segment.Walk's events from offset from with the
// clean-room walk's, and every frame's fields with DecodeFrame's.
func compareEvents(t *testing.T, label string, img []byte, seq uint64, from int64, sealed bool, mine []Event) {
	t.Helper()
	mode := segment.Quiescent
	if sealed {
		mode = segment.Sealed
	}
	var evs []Event
	segment.Walk(img, seq, from, mode, func(e segment.Event) bool {
		evs = append(evs, Event{Kind: kinds[e.Kind], Off: e.Offset, Len: e.Len, Frame: Frame{
			Off: e.Frame.Offset, Length: e.Frame.Length, CRC: e.Frame.CRC, Type: e.Frame.Type,
			Time: e.Frame.Time, Payload: e.Frame.Payload}})
		return true
	})
	if len(evs) != len(mine) {
		t.Errorf("%s: Walk from %d gave %d events, clean-room %d", label, from, len(evs), len(mine))
	}
	for i := range min(len(evs), len(mine)) {
		a, b := evs[i], mine[i]
		if a.Kind != b.Kind || a.Off != b.Off || (a.Len != b.Len && a.Kind != "end") {
			t.Errorf("%s: event %d from %d: Walk %s at %d (%d bytes), clean-room %s at %d (%d bytes)", label, i, from, a.Kind, a.Off, a.Len, b.Kind, b.Off, b.Len)
			continue
		}
		if a.Kind != "frame" && a.Kind != "end" {
			continue
		}
		fa, fb := a.Frame, b.Frame
		if fa.Length != fb.Length || fa.CRC != fb.CRC || fa.Type != fb.Type || fa.Time != fb.Time || !bytes.Equal(fa.Payload, fb.Payload) {
			t.Errorf("%s: frame at %d: DecodeFrame %s, clean-room %s", label, a.Off, describe(fa), describe(fb))
		}
		df := segment.DecodeFrame(img, seq, a.Off)
		if df.State != segment.Committed || df.Extent != align(int64(fb.Length)) {
			t.Errorf("%s: frame at %d: DecodeFrame state %v extent %d", label, a.Off, df.State, df.Extent)
		}
	}
}

// TestCleanRoomReadsACrashedLog holds pkg/segment, pkg/reader and
// pkg/verify to the clean-room decoder on the log as the crash left it,
// before recovery: segments unsealed with a reservation open, and the
// empty ones the writer prepared ahead.
func TestCleanRoomReadsACrashedLog(t *testing.T) {
	dir, _ := sharedCopy(t, crashedDir)
	// The copy took a segment's creation half done or not, as the writer's
	// preparer was at the time: one is always left here, so that verify's
	// leftover finding is met in every run (sameVerdict passes over it).
	names := logFiles(t, dir)
	tmp := filepath.Join(dir, segment.FileName(uint64(len(names))+100)+".tmp")
	if err := os.WriteFile(tmp, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	mine, flagged := sameVerdict(t, "crashed log", dir)
	var reserved int
	for i, name := range names {
		compareSegment(t, filepath.Join(dir, name), mine.Segments[i])
		for _, e := range mine.Segments[i].Events {
			if e.Kind == "reserved" {
				reserved++
			}
		}
	}
	if len(flagged) == 0 || reserved == 0 {
		t.Errorf("the crash left nothing to recover: %d segments flagged, %d reservations", len(flagged), reserved)
	}
	compareRecords(t, "crashed log", dir, mine)
}
