package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// hugeFolios has the page cache hold the file at path in 2 MiB folios
// where the kernel makes them: its pages are dropped, then faulted back
// through a huge-page mapping, as a verify of a log that was not cached
// reads them. It returns how much of the file one touch per 2 MiB made
// resident: the file's size when every block is one folio.
func hugeFolios(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // dirty pages are not dropped
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Skipf("cannot drop the file's pages: %v", err)
	}
	m, err := segment.MapFile(f, st.Size(), false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer segment.Unmap(m)
	var x byte
	for off := 0; off < len(m); off += segment.ReleaseBlock {
		x += m[off]
	}
	runtime.KeepAlive(x)
	return testfs.MappedRSS(t, m)
}

// A full check's peak resident memory is bounded by construction: each
// job holds at most one 2 MiB block of its segment's mapping, whatever
// the page cache holds the file in. A fault maps a whole folio (a 2 MiB
// one by one huge-page entry, a smaller one whole on kernels that map
// large folios at once), so a view spanning two blocks held both, the
// header's and the footer's blocks, read at the start, stayed resident
// until the pass left or reached them, and the END frame, read through
// the mapping, could be in the block after the window's: measured here,
// with the file in 2 MiB folios, 4-6 MiB of file pages at the peak
// through views, 4 MiB through copies. In auditseg verify that was up to
// 8 MiB of a 20 MiB peak with two jobs, depending on how the log's pages
// happened to be cached (a log read back from the disk through verify's
// own mapping, or by cat, against one just written).
//
// It runs in a process of its own, the collector stopped: the peak is the
// process's, less what its heap grew by (testfs.PeakFileRSSFrom).
func TestViewsHoldOneBlock(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	path, want := intactWindowedFile(t, func(i int) int { return 1000 + i%17 })
	buf := make([]byte, windowSize)
	for _, mode := range []segment.ReadMode{viewProbe, viewing, copying} {
		if r := hugeFolios(t, path); r == windowedFileSize {
			t.Logf("mode %d: the file is in 2 MiB folios", mode)
		} else {
			t.Logf("mode %d: %d KiB of the file resident after a touch per 2 MiB: not all of it in 2 MiB folios", mode, r>>10)
		}
		debug.FreeOSMemory()
		peak := testfs.PeakFileRSSFrom(t)
		got, rss := checkFileAs(t, path, Options{}, buf, mode)
		p := peak()
		if len(got.Findings) != 0 || got.Totals.Records != want.Totals.Records {
			t.Fatalf("mode %d:\n%s", mode, summary(got))
		}
		// One block, and the slack of the kernel's per-CPU counts of
		// file and anonymous pages (up to 256 KiB each on 2 CPUs).
		t.Logf("mode %d: mapping resident after the check %d KiB, file pages at the peak %d KiB", mode, rss>>10, p>>10)
		if p > segment.ReleaseBlock+windowSize/2 {
			t.Errorf("mode %d: the check held %d KiB of file pages at its peak; want at most one %d KiB block",
				mode, p>>10, segment.ReleaseBlock>>10)
		}
	}
}

// TestViewsAtBlockEnds: frames spanning the end of a block, smaller and
// larger than what readAtBlockEnd copies past it, intact or torn, are
// judged through views (stopped at block ends, the frame across one
// copied) as through the mapping alone.
func TestViewsAtBlockEnds(t *testing.T) {
	img, offs := windowedImage(t, func(i int) int { return 1000 + i*7919%(4*straddle) })
	// The frame across each block end, and the one before it.
	var across []int64
	for i := 1; i < len(offs); i++ {
		if b := offs[i] &^ (segment.ReleaseBlock - 1); b > offs[i-1] {
			across = append(across, offs[i-1], offs[i-2])
		}
	}
	if len(across) < 8 {
		t.Fatalf("%d frames near block ends", len(across))
	}
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	for i := -1; i < len(across); i++ {
		b := bytes.Clone(img)
		name := "intact"
		if i >= 0 {
			off := across[i]
			l := int64(segment.LoadLength(b, off))
			b[off+l-3] ^= 1 // the payload's last bytes, past the block's end when the frame spans it
			name = fmt.Sprintf("torn frame at %d, %d bytes", off, l)
		}
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		want, _ := checkFileAs(t, path, Options{}, nil, 0)
		if (i < 0) != (len(want.Findings) == 0) || want.Totals.Records == 0 {
			t.Fatalf("%s: through the mapping:\n%s", name, summary(want))
		}
		got, _ := checkFileAs(t, path, Options{}, make([]byte, windowSize), viewing)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, through views:\n%s\nthrough the mapping:\n%s", name, summary(got), summary(want))
		}
	}
}

// TestViewsBlockReadAgain: the frame across a block's end is copied and
// the block behind given back (readAtBlockEnd), but the pass may read
// that block again: a frame after the copied one that runs well past the
// block's end starts a window there, as a frame larger than the window
// or the END frame is read there through the mapping. The block was
// released once, so it was never released again: mapped anew, it stayed
// resident until the check ended, one block more each time. Here a frame
// larger than the window ends 8 KiB before the first block's end, a small
// one follows, then one of 40 KB across the block's end.
func TestViewsBlockReadAgain(t *testing.T) {
	const big, across = windowSize + windowSize/4, 40000
	off := int64(segment.HeaderSize)
	state := 0
	path, want := intactWindowedFile(t, func(i int) int {
		p := int64(len(fmt.Sprintf("record %d ", i)))
		size := 1000
		switch {
		case state == 0 && off+segment.FrameSize(big) >= segment.ReleaseBlock-8<<10:
			state, size = 1, int(segment.ReleaseBlock-8<<10-off-segment.FrameHeaderSize-p)
		case state == 1:
			state = 2
		case state == 2:
			state, size = 3, across
		}
		off += segment.FrameSize(int(p) + size)
		return size
	})
	if state != 3 {
		t.Fatal("the records were not laid out")
	}
	got, rss := checkFileAs(t, path, Options{}, make([]byte, windowSize), viewing)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("through views:\n%s\nthrough the mapping:\n%s", summary(got), summary(want))
	}
	if rss > segment.ReleaseBlock {
		t.Errorf("%d KiB of the mapping resident after the check; want at most one %d KiB block", rss>>10, segment.ReleaseBlock>>10)
	}
}
