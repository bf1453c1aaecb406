package writer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// Recovery walks a dead writer's unsealed segment through its mapping.
// Cut by someone else after recoverSegment checked its size and mapped it
// (FORMAT.md section 12, assumption 8), the walk faults: recovery fails
// naming the file and the offset that had no data, instead of killing
// the process with SIGBUS, and writes nothing (no repair, no footer: the
// chain does not move on). No test from outside lands between the
// mapping and the walk (no writer.FS call comes in between), so
// recoverMapped is called here on the cut mapping, as recoverSegment
// calls it.
func TestRecoveryWalkOnTruncatedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	live := noneWriterWithRecords(t) // ~11 KiB of records: the walk crosses the cut
	tail := live.cur.Load().tail.Load()
	img, err := os.ReadFile(live.cur.Load().path)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	// The segment as kill -9 leaves it (the page cache is coherent with
	// the mapping): records, no END, no footer.
	dir := t.TempDir()
	path := filepath.Join(dir, segment.FileName(1))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	h, err := segment.DecodeHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := Options{SegmentSize: h.Size, Sync: SyncNone, Logger: slog.New(slog.DiscardHandler)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := &Writer{dir: dir, opts: opts}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mapSegment(f, path, h.Seq, h.Size, false)
	if err != nil {
		t.Fatal(err)
	}
	const cut = 4096
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	var prev [segment.DigestSize]byte
	got, err := w.recoverMapped(s, h, true, &prev)
	// The offset is the first byte the walk read past the cut: inside
	// the frame that straddles it, or the next frame's header.
	prefix := path + ": changed while it was being recovered (truncated?): no data at offset "
	var off int64
	if got != nil || err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("recovery of a segment cut to %d bytes after it was mapped: %v, %v; want %q and an offset", cut, got, err, prefix)
	}
	if off, err = strconv.ParseInt(strings.TrimPrefix(err.Error(), prefix), 10, 64); err != nil || off < cut || off >= tail {
		t.Fatalf("recovery names offset %d (%v), want one in [%d, %d) where the records were", off, err, cut, tail)
	}
	if !s.unmapped {
		t.Error("the segment is still mapped after recovery failed")
	}
	if prev != ([segment.DigestSize]byte{}) || w.stats.RecoveredSegments != 0 {
		t.Errorf("recovery failed, yet moved the chain on (%x) or counted the segment recovered (%d)", prev, w.stats.RecoveredSegments)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, img[:cut]) {
		t.Fatalf("the cut file changed: %d bytes, want its %d bytes as they were (no footer written)", len(after), cut)
	}
}
