package reader_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A segment file cut inside a page reads as zeros from the cut to the end
// of that page, through the mapping, without a fault: the payload of a
// record the reader decoded and checked before the cut changes under the
// caller. A copy made with AppendPayload (or Clone) is checked against the
// record's CRC, so the zero-filled bytes are an error naming the file and
// the record, never a payload. They were returned as the record.
func TestPayloadCutInsideItsPage(t *testing.T) {
	dir := t.TempDir()
	recs := writeLogWith(t, dir, 30, true, func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i)}, 1000) })
	path := filepath.Join(dir, segment.FileName(1))
	// Record 5 (frame 1024 bytes at 5184) lies wholly in the page from
	// 4096 on: the cut leaves its header and the start of its payload, and
	// zeros from the cut on.
	victim := recs[5]
	cut := victim.pos.Offset + segment.FrameHeaderSize + 500
	if victim.pos.Seq != 1 || cut%4096 == 0 || victim.pos.Offset/4096 != (victim.pos.Offset+1023)/4096 {
		t.Fatalf("layout: record at %v, cut at %d", victim.pos, cut)
	}
	r, err := reader.Open(dir, reader.Options{Start: reader.At(victim.pos)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || r.Record().Position != victim.pos {
		t.Fatalf("no record at %v: %v", victim.pos, r.Err())
	}
	rec := r.Record()
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}

	dst := []byte("kept")
	got, err := rec.AppendPayload(dst)
	var ce *segment.ChangedError
	if !errors.As(err, &ce) || !errors.Is(err, segment.ErrChangedAfterCheck) || ce.Path != path || ce.Off != victim.pos.Offset {
		t.Fatalf("AppendPayload after the cut: %d bytes appended (%d NUL), %v; want a ChangedError of %s at %d",
			len(got)-len(dst), bytes.Count(got, []byte{0}), err, path, victim.pos.Offset)
	}
	want := fmt.Sprintf("%s: changed while it was read (truncated?): the record at offset %d no longer matches its checksum", path, victim.pos.Offset)
	if err.Error() != want || string(got) != "kept" {
		t.Fatalf("AppendPayload after the cut: %q, %q; want %q, %q", got, err, "kept", want)
	}
	if c, err := rec.Clone(); !errors.Is(err, segment.ErrChangedAfterCheck) || c.Payload != nil {
		t.Fatalf("Clone after the cut: %d bytes, %v; want no payload and the error", len(c.Payload), err)
	}
}

// AppendPayload and Clone return the payload of an intact record, checked;
// of a record the caller built, unchecked. The check rebuilds the frame
// header from the record's time, whatever the timestamp: at the limits of
// int64 too.
func TestAppendPayloadIntact(t *testing.T) {
	dir := t.TempDir()
	b := newSeg(1)
	var want []rec
	for i, ts := range []int64{math.MinInt64, -1, 0, baseTS, math.MaxInt64} {
		want = append(want, b.add(ts, payload(i)))
	}
	want = append(want, b.add(baseTS, nil))
	b.seal(t, [segment.DigestSize]byte{})
	b.write(t, dir)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf []byte
	for i := 0; r.Next(); i++ {
		rec := r.Record()
		if buf, err = rec.AppendPayload(buf[:0]); err != nil || !bytes.Equal(buf, want[i].payload) {
			t.Fatalf("record %d (time %d): %q, %v; want %q", i, want[i].ts, buf, err, want[i].payload)
		}
		if c, err := rec.Clone(); err != nil || !bytes.Equal(c.Payload, want[i].payload) || c.Position != want[i].pos {
			t.Fatalf("clone of record %d: %+v, %v", i, c, err)
		}
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	built := reader.Record{Payload: []byte("not from a reader")}
	if p, err := built.AppendPayload(nil); err != nil || string(p) != "not from a reader" {
		t.Fatalf("a record the caller built: %q, %v", p, err)
	}
}

// A clone's Payload is the caller's, in memory the file cannot change:
// the caller may edit it (redact a field, trim it) or restamp the record,
// and cloning or copying it again must copy what it holds. It was
// checked against the frame's CRC again, so an edited clone failed as
// "changed while it was read (truncated?)", naming a segment file that
// had not changed.
func TestCloneIsTheCallers(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 3, true)
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no record: %v", r.Err())
	}
	c, err := r.Record().Clone()
	if err != nil || !bytes.Equal(c.Payload, recs[0].payload) {
		t.Fatalf("clone: %q, %v", c.Payload, err)
	}
	c.Payload = append(bytes.ToUpper(c.Payload[:4]), c.Payload[4:]...)
	c.Time = c.Time.Truncate(time.Hour)
	want := string(c.Payload)
	if p, err := c.AppendPayload(nil); err != nil || string(p) != want {
		t.Fatalf("AppendPayload of an edited clone: %q, %v; want %q", p, err, want)
	}
	if cc, err := c.Clone(); err != nil || string(cc.Payload) != want || !cc.Time.Equal(c.Time) || cc.Position != c.Position {
		t.Fatalf("clone of an edited clone: %+v, %v; want %q", cc, err, want)
	}
}
