package writer_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// payloads decodes every segment of dir with the shared walker and returns
// the DATA payloads by position, and the events that are not clean frames.
func payloads(t *testing.T, dir string) (map[segment.Position][]byte, []string) {
	t.Helper()
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[segment.Position][]byte{}
	var bad []string
	for _, e := range l.Segments {
		im, err := segment.OpenImage(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := im.Check(); err != nil {
			bad = append(bad, err.Error())
		}
		im.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			switch ev.Kind {
			case segment.EvFrame:
				if ev.Frame.Type == segment.TypeData {
					out[segment.Position{Seq: e.Seq, Offset: ev.Offset}] = bytes.Clone(ev.Frame.Payload)
				}
			case segment.EvEnd, segment.EvTail:
			default:
				bad = append(bad, fmt.Sprintf("%s: %v at %d: %v", e.Path, ev.Kind, ev.Offset, ev.Frame.Err))
			}
			return true
		})
		im.Close()
	}
	return out, bad
}

// TestRecoveryKeepsRecordsAcrossPages is the state kill -9 leaves: the
// active segment, unsealed, full of committed records that straddle page
// boundaries. It is copied out of a live writer's directory (the page
// cache is coherent with the mapping) and opened: recovery must seal it
// without changing a byte of any record.
func TestRecoveryKeepsRecordsAcrossPages(t *testing.T) {
	live, crashed := t.TempDir(), t.TempDir()
	w, err := writer.Open(live, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	want := map[segment.Position][]byte{}
	var seq uint64
	for i := 0; ; i++ {
		p := bytes.Repeat([]byte{byte(i%251 + 1)}, 150+i%37)
		pos, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		if seq == 0 {
			seq = pos.Seq
		}
		if pos.Seq != seq {
			t.Fatal("rotated before five pages were written")
		}
		want[pos] = p
		if pos.Offset > 5*4096 {
			break // several page boundaries crossed
		}
	}
	b, err := os.ReadFile(filepath.Join(live, segment.FileName(seq)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, segment.FileName(seq)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := payloads(t, crashed); len(got) != len(want) {
		t.Fatalf("the copy holds %d records, want %d", len(got), len(want))
	}

	if st := recoverOnce(t, crashed, 64<<10); st.RecoveredSegments != 1 || st.DamagedSegments != 0 {
		t.Errorf("recovery stats %+v, want one segment recovered, none damaged", st)
	}
	got := intactPayloads(t, crashed)
	for p, b := range want {
		if !bytes.Equal(got[p], b) {
			t.Fatalf("record at %v changed by recovery (%d records written, %d read back intact)", p, len(want), len(got))
		}
	}
}

// TestRecoveryOfAnEndClaim is a writer killed inside PutEnd, after it
// claimed the END frame (negative length up to the record limit) and
// before it committed it. Recovery must finish the segment (END there,
// sealed) and keep every record, like any other claim never committed.
func TestRecoveryOfAnEndClaim(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	img, offs, off := fullOfRecords(size)
	segment.StoreLength(img, off, -int32(segment.RecordLimit(size)-off)) // the END claim
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), img, 0o640); err != nil {
		t.Fatal(err)
	}
	if f := segment.DecodeFrame(img, 1, off); f.State != segment.Reserved {
		t.Errorf("an END frame claimed and not yet committed decodes as %v (%v), want reserved", f.State, f.Err)
	}
	if st := recoverOnce(t, dir, size); st.RecoveredSegments != 1 || st.DamagedSegments != 0 {
		t.Fatalf("recovery stats %+v, want the segment recovered, not damaged", st)
	}
	got := intactPayloads(t, dir)
	for i, o := range offs {
		if p := got[segment.Position{Seq: 1, Offset: o}]; len(p) != 500 || p[0] != byte(i) {
			t.Fatalf("record %d at %d lost by recovery", i, o)
		}
	}
	im, err := segment.OpenImage(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if f, err := im.Footer(); err != nil || f.EndOffset != off {
		t.Fatalf("footer %+v, %v; want sealed with END at %d", f, err, off)
	}
}

// TestRecoveryKilledWhilePaddingAGap: recovery turns a zero gap (a claim
// whose writer died before storing it) into a PAD, claiming it first
// (segment.PutPad). Killed after any of its stores, it leaves a slot the
// next recovery pads again: the segment is sealed with every record.
func TestRecoveryKilledWhilePaddingAGap(t *testing.T) {
	const size = 64 << 10
	gapLen := segment.FrameSize(16)
	for stores := 1; stores <= 3; stores++ {
		dir := t.TempDir()
		img := segment.NewImage(1, size, 1)
		gap := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, 10, []byte("one"))
		after := gap + gapLen
		segment.PutFrame(img, 1, after, segment.TypeData, 12, []byte("three"))
		segment.StoreLength(img, gap, -int32(gapLen)) // PutPad's stores, in order
		if stores >= 2 {
			segment.PutFrameHeader(img[gap:], segment.TypePad, int32(gapLen), 0)
		}
		if stores >= 3 {
			segment.PutFrameCRC(img[gap:], segment.FrameSeed(1), gap)
		}
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), img, 0o640); err != nil {
			t.Fatal(err)
		}
		if st := recoverOnce(t, dir, size); st.RecoveredSegments != 1 || st.DamagedSegments != 0 {
			t.Fatalf("killed after %d stores: recovery stats %+v, want the segment recovered", stores, st)
		}
		got := intactPayloads(t, dir)
		if string(got[segment.Position{Seq: 1, Offset: segment.HeaderSize}]) != "one" || string(got[segment.Position{Seq: 1, Offset: after}]) != "three" {
			t.Fatalf("killed after %d stores: records %q", stores, got)
		}
	}
}

// A damaged commit word that reads as an END claim over committed frames
// (a reserved extent up to the record limit, with frames behind it) is
// damage, not an END to finish: recovery leaves the segment for verify
// instead of ending it there and hiding the frames (found by a format
// review: 915 intact records hidden under a recovered END).
func TestRecoveryOfAForgedEndClaim(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	img, offs, _ := fullOfRecords(size)
	bad := offs[3]
	segment.StoreLength(img, bad, -int32(segment.RecordLimit(size)-bad))
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), img, 0o640); err != nil {
		t.Fatal(err)
	}
	if st := recoverOnce(t, dir, size); st.DamagedSegments != 1 {
		t.Fatalf("recovery stats %+v, want the segment left as damaged", st)
	}
	b, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range offs[4:] {
		if f := segment.DecodeFrame(b, 1, o); f.State != segment.Committed || f.Payload[0] != byte(i+4) {
			t.Fatalf("record %d at %d: %v after recovery", i+4, o, f.State)
		}
	}
}

// fullOfRecords is segment 1 of size bytes, filled with 500-byte records
// (record i all byte i) to within 600 bytes of DataLimit: their offsets,
// and the offset after the last.
func fullOfRecords(size int64) ([]byte, []int64, int64) {
	img := segment.NewImage(1, size, 1)
	off := int64(segment.HeaderSize)
	var offs []int64
	for i := 0; off < segment.DataLimit(size)-600; i++ {
		offs = append(offs, off)
		off = segment.PutFrame(img, 1, off, segment.TypeData, int64(10+i), bytes.Repeat([]byte{byte(i)}, 500))
	}
	return img, offs, off
}

// recoverOnce opens the log in dir (recovering it) and closes it again,
// returning what recovery did.
func recoverOnce(t *testing.T, dir string, size int64) writer.Stats {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: size})
	if err != nil {
		t.Fatal(err)
	}
	st := w.Recovered()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

// intactPayloads is payloads failing the test on any damage.
func intactPayloads(t *testing.T, dir string) map[segment.Position][]byte {
	t.Helper()
	got, bad := payloads(t, dir)
	for _, s := range bad {
		t.Error(s)
	}
	return got
}

// A segment named near the end of the numbering (2^64) stops Open, naming
// the file, instead of letting the next segment wrap to 0 and sort first
// (found by a format review: after 18446744073709551615.seg, write created
// 00000000000000000000.seg).
func TestOpenRefusesWrappingSequence(t *testing.T) {
	dir := t.TempDir()
	const seq = math.MaxUint64
	img := segment.NewImage(seq, segment.MinSegmentSize, 1)
	name := filepath.Join(dir, segment.FileName(seq))
	if err := os.WriteFile(name, img, 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err == nil {
		w.Close()
		t.Fatal("Open continued after segment 2^64-1")
	}
	// The file first: Open used to put "open DIR: " before it.
	if !strings.HasPrefix(err.Error(), name+": ") {
		t.Fatalf("error does not start with the file: %v", err)
	}
	if l, _ := segment.List(dir); len(l.Segments) != 1 {
		t.Fatalf("%d segments after the refused Open", len(l.Segments))
	}
}

// A segment file shorter than a header (0 or 40 bytes, as a copy cut
// short or a hand-made file leaves) is left as it is, and the log line
// says why and where: it said err=EOF, naming neither (found by a
// hostile-user review).
func TestRecoveryNamesASegmentTooShortForItsHeader(t *testing.T) {
	for _, size := range []int{0, 40} {
		dir := t.TempDir()
		w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append([]byte("kept")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		short := filepath.Join(dir, segment.FileName(9))
		if err := os.WriteFile(short, bytes.Repeat([]byte{1}, size), 0o640); err != nil {
			t.Fatal(err)
		}
		logs := &logCapture{}
		w, err = writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Logger: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		want := fmt.Sprintf("%s: offset 0: its header is damaged: file too short for a segment header (%d bytes)", short, size)
		if w.Recovered().DamagedSegments != 1 || !logs.contains(want) {
			t.Errorf("%d bytes: DamagedSegments %d, logged %s, want a line with %q", size, w.Recovered().DamagedSegments, logs, want)
		}
	}
}
