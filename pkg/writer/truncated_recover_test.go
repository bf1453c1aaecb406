package writer

import (
	"bytes"
	"fmt"
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
	w, s, h, img, tail := deadSegment(t, nil)
	path := s.path
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
	checkRecoveryFailed(t, w, s, prev)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, img[:cut]) {
		t.Fatalf("the cut file changed: %d bytes, want its %d bytes as they were (no footer written)", len(after), cut)
	}
}

// The same segment with a gap (a frame claimed and never stored) in its
// first page, cut after recovery's walk and before its repairs, which
// recoverMapped makes one after the other (walkForRecovery, then
// repairAndSeal, called here with the cut in between: nothing from
// outside runs there). The PAD over the gap lands in a page the file
// kept; the END at the tail, past the cut, faults under the second
// guard: recovery fails naming the file and the END's offset, writes no
// footer and does not move the chain on.
func TestRecoveryRepairOnTruncatedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	var gap [2]int64
	w, s, h, img, tail := deadSegment(t, func(img []byte) {
		// Zero the second frame whole: the space a writer claimed (the
		// tail moved past it) and died before storing its claim word.
		var offs []int64
		segment.Walk(img, 1, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			offs = append(offs, ev.Offset)
			return len(offs) < 3
		})
		gap = [2]int64{offs[1], offs[2] - offs[1]}
		clear(img[gap[0] : gap[0]+gap[1]])
	})
	path := s.path
	r, err := walkForRecovery(s, h)
	if err != nil || r.refused != nil || r.end != tail || len(r.pads) != 1 || r.pads[0] != gap {
		t.Fatalf("walk before the cut: %+v, %v; want a PAD at %v and the END at %d", r, err, gap, tail)
	}
	const cut = 8192
	if tail < cut+segment.FrameHeaderSize || gap[0]+gap[1] > cut {
		t.Fatalf("tail %d, gap %v: want the gap before the cut at %d, the tail past it", tail, gap, cut)
	}
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	var prev [segment.DigestSize]byte
	err = w.repairAndSeal(s, r, &prev)
	if want := fmt.Sprintf("%s: changed while it was being recovered (truncated?): no data at offset %d", path, tail); err == nil || err.Error() != want {
		t.Fatalf("repairs of a segment cut to %d bytes after the walk: %v, want %q", cut, err, want)
	}
	checkRecoveryFailed(t, w, s, prev)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(after)) != cut || segment.LoadLength(after, gap[0]) != int32(gap[1]) || after[gap[0]+8] != segment.TypePad {
		t.Fatalf("the cut file: %d bytes, frame at %d: length %d, type %#x; want %d bytes and the PAD of %d bytes stored",
			len(after), gap[0], segment.LoadLength(after, gap[0]), after[gap[0]+8], cut, gap[1])
	}
	if !bytes.Equal(after[:gap[0]], img[:gap[0]]) || !bytes.Equal(after[gap[0]+gap[1]:], img[gap[0]+gap[1]:cut]) {
		t.Fatal("recovery changed the cut file outside the PAD")
	}
}

// deadSegment returns a writer as Open has it when recovery starts (not
// running) on a directory holding segment 1 as kill -9 leaves it (the
// page cache is coherent with the mapping): ~11 KiB of records, no END,
// no footer, changed by change if not nil. It returns the segment mapped
// as recoverSegment maps it, its header, its bytes and where its records
// end.
func deadSegment(t *testing.T, change func([]byte)) (*Writer, *seg, segment.Header, []byte, int64) {
	t.Helper()
	live := noneWriterWithRecords(t)
	tail := live.cur.Load().tail.Load()
	img, err := os.ReadFile(live.cur.Load().path)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(img)
	}
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
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mapSegment(f, path, h.Seq, h.Size, false)
	if err != nil {
		t.Fatal(err)
	}
	return &Writer{dir: dir, opts: opts}, s, h, img, tail
}

// checkRecoveryFailed checks what a recovery that failed on s must not
// have done: keep s mapped, move the chain on (prev), count s recovered.
func checkRecoveryFailed(t *testing.T, w *Writer, s *seg, prev [segment.DigestSize]byte) {
	t.Helper()
	if !s.unmapped {
		t.Error("the segment is still mapped after recovery failed")
	}
	if prev != ([segment.DigestSize]byte{}) || w.stats.RecoveredSegments != 0 {
		t.Errorf("recovery failed, yet moved the chain on (%x) or counted the segment recovered (%d)", prev, w.stats.RecoveredSegments)
	}
}
