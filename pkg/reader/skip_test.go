package reader_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

// inSeg returns the records of recs in segment seq.
func inSeg(recs []rec, seq uint64) []rec {
	var out []rec
	for _, r := range recs {
		if r.pos.Seq == seq {
			out = append(out, r)
		}
	}
	return out
}

// TestLastWithTornRecordBeforeStart: a torn record in the start segment,
// before the first record asked for, made Last(n) skip one intact record
// too many (the footer counts the torn one, the reader skips only readable
// ones): exactly the last n records come back.
func TestLastWithTornRecordBeforeStart(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 3000, true)
	s2 := inSeg(recs, 2)
	if len(s2) < 10 || len(inSeg(recs, 3)) == 0 {
		t.Fatalf("fixture: %d records in segment 2", len(s2))
	}
	p := filepath.Join(dir, segment.FileName(2))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[s2[1].pos.Offset+segment.FrameHeaderSize] ^= 0xff // the second record's payload
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	start := 0 // index in recs of s2[5]
	for recs[start].pos != s2[5].pos {
		start++
	}
	n := uint64(len(recs) - start)
	got, _ := readAll(t, dir, reader.Options{Start: reader.Last(n)})
	sameRecs(t, got, recs[start:])
}

// TestStartPastUnreadableArchive: an archive whose content does not
// decompress but whose summary is intact (so its records were counted)
// must not have its records to skip taken from the next segment.
func TestStartPastUnreadableArchive(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 3000, true)
	p := filepath.Join(dir, segment.FileName(2))
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(img, nil)
	enc.Close()
	// Cut inside the first block, so that nothing of it decodes (an
	// archive cut further on is read as far as it decodes, and a flipped
	// byte mostly fails only the content checksum, after which it is read
	// frame by frame); the summary appended below is intact.
	var zh zstd.Header
	if err := zh.Decode(z); err != nil {
		t.Fatal(err)
	}
	z = z[:zh.HeaderSize+8]
	if err := os.WriteFile(filepath.Join(dir, segment.ArchiveName(2)), segment.AppendSummary(z, img), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	s2, after := inSeg(recs, 2), 0
	for i, r := range recs {
		if r.pos.Seq > 2 {
			after = i
			break
		}
	}
	for _, st := range []reader.Start{
		reader.Last(uint64(len(recs) - after + len(s2)/2)), // from the middle of segment 2
		reader.Skip(uint64(after - len(s2)/2)),
	} {
		got, dmg := readAll(t, dir, reader.Options{Start: st})
		if len(dmg) == 0 {
			t.Errorf("%+v: the unreadable archive was not reported", st)
		}
		sameRecs(t, got, recs[after:])
	}
}

// TestAfterLargestOffset: a position with the largest offset (a corrupt
// cursor file, say) is after every record of its segment; its offset + 1
// once wrapped around and the whole segment was read again.
func TestAfterLargestOffset(t *testing.T) {
	dir := t.TempDir()
	recs := writeLog(t, dir, 3000, true)
	last := recs[len(recs)-1].pos.Seq
	got, _ := readAll(t, dir, reader.Options{Start: reader.After(segment.Position{Seq: last, Offset: math.MaxInt64})})
	if len(got) != 0 {
		t.Fatalf("after the end of the last segment: %d records", len(got))
	}
	got, _ = readAll(t, dir, reader.Options{Start: reader.After(segment.Position{Seq: last - 1, Offset: math.MaxInt64})})
	sameRecs(t, got, inSeg(recs, last))
}
