package reader

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testlog"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"github.com/klauspost/compress/zstd"
)

// A segment archived between the listing and the count (compress-finished
// running beside `tail -n N`) is counted from its archive. It was counted
// as empty, which moved the start of -n N back by that segment's records
// (a review printed all 600000 records for -n 599000).
func TestCountArchivedSinceListing(t *testing.T) {
	dir := t.TempDir()
	l := testlog.Write(t, dir, writer.Options{SegmentSize: segment.MinSegmentSize}, 3000, func(i int) []byte {
		return []byte("record " + string(rune('a'+i%26)))
	})
	r := &Reader{dir: dir, list: l.Segments, ctx: context.Background()}
	before := make([]uint64, len(l.Segments))
	for i, e := range l.Segments {
		before[i], _, _ = r.count(e)
	}
	startSeq, skip := locatedLast(t, r, 2500)

	// Archive every sealed segment but the last, as compress-finished
	// would, without listing again: the entries name removed files.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for _, e := range l.Segments[:len(l.Segments)-1] {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		arch := segment.AppendSummary(enc.EncodeAll(b, nil), b)
		if err := os.WriteFile(filepath.Join(dir, segment.ArchiveName(e.Seq)), arch, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(e.Path); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range l.Segments {
		if n, _, _ := r.count(e); n != before[i] || before[i] == 0 && i < len(l.Segments)-1 {
			t.Fatalf("segment %d: %d records counted, %d before it was archived", e.Seq, n, before[i])
		}
		if i < len(l.Segments)-1 {
			if n, _ := r.walkCount(e); n != before[i] {
				t.Fatalf("segment %d: %d records walked, %d before it was archived", e.Seq, n, before[i])
			}
		}
	}
	if s, k := locatedLast(t, r, 2500); s != startSeq || k != skip {
		t.Fatalf("-n 2500 starts at segment %d after %d records; before archiving, %d after %d", s, k, startSeq, skip)
	}
}

// locatedLast runs locateLast(n) and returns where it starts.
func locatedLast(t *testing.T, r *Reader, n uint64) (uint64, uint64) {
	t.Helper()
	r.startSeq, r.skip = 0, 0
	if err := r.locateLast(n); err != nil {
		t.Fatal(err)
	}
	return r.startSeq, r.skip
}
