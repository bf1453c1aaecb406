package writer_test

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestRecoveryRemovesOnlyItsOwnTemps: FORMAT.md section 8, step 1.
// Recovery deletes the writer's leftover N.seg.tmp files (interrupted
// creations) and leaves compress-finished's N.seg.zst.tmp alone: that
// command may be running beside the writer and removes its own.
func TestRecoveryRemovesOnlyItsOwnTemps(t *testing.T) {
	dir := writtenUnsynced(t)
	own := filepath.Join(dir, segment.FileName(99)+segment.TempExt)
	theirs := filepath.Join(dir, segment.FileName(1)+segment.ArchiveExt+segment.TempExt)
	for _, p := range []string{own, theirs} {
		if err := os.WriteFile(p, make([]byte, 4096), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(own); !os.IsNotExist(err) {
		t.Errorf("%s: %v; want it removed by recovery", own, err)
	}
	if _, err := os.Lstat(theirs); err != nil {
		t.Errorf("%s: %v; want it left for compress-finished", theirs, err)
	}
	if n := w.Recovered().RemovedTemps; n != 1 {
		t.Errorf("Recovered().RemovedTemps = %d, want 1", n)
	}
}

// TestRecoveryOfTornFooters: FORMAT.md section 8, the last paragraph. A
// segment whose footer is torn counts as unsealed: the newest such
// segment after the newest valid footer is sealed again (FlagRecovered,
// chained to the segment before it, records kept), while an older one is
// never modified: verify reports it.
func TestRecoveryOfTornFooters(t *testing.T) {
	dir := writtenUnsynced(t) // segments 1-4 sealed (4 by Close), 5 empty
	tear := func(seq uint64) []byte {
		p := filepath.Join(dir, segment.FileName(seq))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-segment.FooterSize+20] ^= 0xff // the end offset: the CRC fails, the magic stays
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		return b
	}
	older := tear(1)
	newest := tear(4)
	before := payloadsIn(t, dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Recovered(); st.RecoveredSegments != 1 {
		t.Errorf("Recovered() = %+v; want the newest torn footer (segment 4) resealed, and only it", st)
	}
	b, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil || !bytes.Equal(b, older) {
		t.Errorf("segment 1 (torn footer, older than the valid footer of 2) changed by recovery (%v)", err)
	}
	b, err = os.ReadFile(filepath.Join(dir, segment.FileName(4)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := segment.DecodeFooter(b, h)
	if err != nil || f.Flags&segment.FlagRecovered == 0 {
		t.Errorf("segment 4 footer after recovery: %+v, %v; want a valid footer with FlagRecovered", f, err)
	}
	if !bytes.Equal(b[:len(b)-segment.FooterSize], newest[:len(newest)-segment.FooterSize]) {
		t.Error("recovery changed segment 4 before its footer: committed bytes rewritten")
	}
	if after := payloadsIn(t, dir); !maps.EqualFunc(before, after, bytes.Equal) {
		t.Errorf("records changed across recovery: %d before, %d after", len(before), len(after))
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range rep.Findings {
		if fd.Seq != 1 || fd.Class != verify.Footer {
			t.Errorf("finding %s at %d:%d (%s); want only segment 1's footer", fd.Class, fd.Seq, fd.Offset, fd.Reason)
		}
	}
	if rep.Totals.Findings[verify.Footer] == 0 {
		t.Errorf("verify does not report segment 1's torn footer:\n%+v", rep.Findings)
	}
}

// payloadsIn returns every record the reader returns from dir, by position.
func payloadsIn(t *testing.T, dir string) map[segment.Position][]byte {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[segment.Position][]byte{}
	for r.Next() {
		rec := r.Record()
		out[rec.Position] = bytes.Clone(rec.Payload)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
