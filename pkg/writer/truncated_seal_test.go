package writer

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A `none` writer's footer store is the first touch of a page the file
// lost under it (truncated by someone else): the store faults, which
// fails the writer (sticky, naming the file and the offset) instead of
// killing the process with SIGBUS, and the segment is not listed as
// sealed for Sync. Only the last page is cut, after the END frame's
// header, so the tally and the digest read what they need and the
// footer store is what meets the cut.
func TestFooterStoreOnTruncatedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	w := noneWriterWithRecords(t)
	s := w.cur.Load()
	size, cut := int64(len(s.data)), int64(len(s.data)-os.Getpagesize())
	if end := s.tail.Load() + segment.FrameHeaderSize; end > cut {
		t.Fatalf("the END frame Close writes at %d would end at %d, past the cut at %d", s.tail.Load(), end, cut)
	}
	if err := os.Truncate(s.path, cut); err != nil {
		t.Fatal(err)
	}
	// Close writes END (before the cut) and waits for the sealer.
	err := w.Close()
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Close after the footer's page was cut: %v, want ErrFailed", err)
	}
	if e := w.failed.Load(); e == nil || *e != err {
		t.Fatalf("sticky failure %v, Close returned %v", e, err)
	}
	msg := err.Error()
	_, rest, _ := strings.Cut(msg, s.path+": changed while it was being sealed (truncated?): no data at offset ")
	if off, perr := strconv.ParseInt(rest, 10, 64); perr != nil || off < size-segment.FooterSize || off >= size {
		t.Fatalf("Close: %q; want the file and an offset in the footer [%d, %d)", msg, size-segment.FooterSize, size)
	}
	w.lazy.mu.Lock()
	defer w.lazy.mu.Unlock()
	if slices.Contains(w.lazy.paths, s.path) {
		t.Fatalf("%s listed as sealed (for Sync to flush) though its footer store faulted", s.path)
	}
}

// A Sync after a segment file was truncated under the writer fails it,
// naming the file, instead of killing the process: the flush reads the
// commit words of the records it covers, past the cut, unless the
// sealer met the cut first and failed the writer. Which one does is a
// race, so it is run a few times.
func TestSyncOnTruncatedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	for range 20 {
		w := noneWriterWithRecords(t)
		path := w.cur.Load().path
		if err := os.Truncate(path, 4096); err != nil {
			t.Fatal(err)
		}
		err := w.Sync()
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), path+": changed while it was being ") {
			t.Fatalf("Sync after the segment was truncated: %v, want ErrFailed naming %s", err, path)
		}
		if cerr := w.Close(); !errors.Is(cerr, ErrFailed) {
			t.Fatalf("Close: %v", cerr)
		}
	}
}
