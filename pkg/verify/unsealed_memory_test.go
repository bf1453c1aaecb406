package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// unsealedWindowedFile is a segment file of windowedFileSize bytes that a
// writer left unsealed (a crashed log's last segment, or a live log's
// active one): records of recordSize(i) bytes up to three quarters of it,
// zeros after. It returns the path and the number of records.
// With reserved, its second frame is reserved, never committed: a dead
// writer's, or a live one's in progress.
func unsealedWindowedFile(t *testing.T, recordSize func(i int) int, reserved bool) (string, int) {
	t.Helper()
	const seq = 1
	img := segment.NewImage(seq, windowedFileSize, baseCreated)
	off := int64(segment.HeaderSize)
	n := 0
	for i := 0; off < windowedFileSize*3/4; i++ {
		p := fmt.Appendf(nil, "record %d ", i)
		at := off
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), append(p, bytes.Repeat([]byte{'x'}, recordSize(i))...))
		if reserved && i == 1 {
			segment.StoreLength(img, at, -int32(off-at))
			continue
		}
		n++
	}
	path := filepath.Join(t.TempDir(), segment.FileName(seq))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	return path, n
}

// TestUnsealedWalkHoldsFewBlocks: a segment not sealed is walked through
// its mapping (a writer may still be filling it: no window), and the walk
// kept every block it passed mapped until the check ended: a live log's
// active segment, or a crashed log's last one, cost verify its whole
// size in resident memory (76 MiB at the peak for a 64 MiB segment,
// against 13 MiB for a log of sealed ones). The walk now releases the
// blocks it has left, as the window does. Records of 1 KiB, and of
// 100 KiB, with a reserved frame among the first or not: the walker takes
// the frames after such a slot in a batch of events, which with 100 KiB
// records spanned many blocks.
//
// It runs in a process of its own, the collector stopped: the peak is
// the process's, less what its heap grew by (testfs.PeakFileRSSFrom).
func TestUnsealedWalkHoldsFewBlocks(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, c := range []struct {
		size     int
		reserved bool
	}{{1000, false}, {100 << 10, false}, {1000, true}, {100 << 10, true}} {
		size := c.size
		path, n := unsealedWindowedFile(t, func(i int) int { return size + i%17 }, c.reserved)
		buf := make([]byte, windowSize)
		hugeFolios(t, path)
		debug.FreeOSMemory()
		peak := testfs.PeakFileRSSFrom(t)
		got, rss := checkFileAs(t, path, Options{}, buf, viewProbe)
		p := peak()
		if got.Totals.Records != uint64(n) || got.Segments[0].State == StateSealed {
			t.Fatalf("records of %d bytes (reserved %v): %d records, want %d:\n%s", size, c.reserved, got.Totals.Records, n, summary(got))
		}
		t.Logf("records of %d bytes (reserved %v): mapping resident after the check %d KiB, file pages at the peak %d KiB", size, c.reserved, rss>>10, p>>10)
		// Two blocks: the one the walk is in and, for a moment, the next
		// (a frame across their boundary); and the per-CPU slack of the
		// kernel's counts (see TestViewsHoldOneBlock).
		if p > 2*segment.ReleaseBlock+windowSize/2 {
			t.Errorf("records of %d bytes (reserved %v): the check held %d KiB of file pages at its peak; want at most two %d KiB blocks",
				size, c.reserved, p>>10, segment.ReleaseBlock>>10)
		}
	}
}

// TestRehashHoldsFewBlocks: a segment whose footer is lost (its END frame
// intact) is hashed again when a sealed segment follows, to check the
// link to it (FORMAT.md section 6); that hash mapped the segment anew and
// read it whole, resident until it was done, after the walk had released
// it. It goes a block at a time now, released behind.
func TestRehashHoldsFewBlocks(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	l := newTestLog(t)
	var records [][]byte
	for i := 0; i < int(windowedFileSize)*3/4/1100; i++ {
		records = append(records, append(fmt.Appendf(nil, "record %d ", i), bytes.Repeat([]byte{'x'}, 1000)...))
	}
	lost := l.seal(buildSize(l.next, windowedFileSize, records, true))
	clear(lost.img[len(lost.img)-segment.FooterSize:])
	lost.write(t)
	l.sealed(5) // chained to the lost footer's digest
	hugeFolios(t, lost.path)
	debug.FreeOSMemory()
	peak := testfs.PeakFileRSSFrom(t)
	rep, err := Dir(l.dir, Options{Workers: 1})
	p := peak()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Segments[0].State == StateSealed || !rep.Segments[1].ChainChecked || rep.Totals.Records != uint64(len(records)+5) {
		t.Fatalf("want the first segment unsealed and the link to it checked:\n%s", summary(rep))
	}
	t.Logf("file pages at the peak %d KiB", p>>10)
	if p > 2*segment.ReleaseBlock+windowSize/2 {
		t.Errorf("the check held %d KiB of file pages at its peak; want at most two %d KiB blocks", p>>10, segment.ReleaseBlock>>10)
	}
}
