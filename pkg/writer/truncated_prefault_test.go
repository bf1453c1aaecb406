package writer

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// prefaultErr is the error pre-faulting a segment file truncated under
// the writer must give: the file, and the offset that had no data.
func prefaultErr(path string, off int64) string {
	return fmt.Sprintf("%s: changed while it was being pre-faulted (truncated?): no data at offset %d", path, off)
}

// A segment file made ahead as the creator makes them, mapped, then cut
// by someone else (FORMAT.md section 12, assumption 8): populate, and
// fill before the segment is published, fail at the first page the file
// lost, and fill once it is published (MADV_POPULATE_WRITE alone, which
// returns EFAULT there) at the file's end, instead of killing the process
// with SIGBUS. No test from outside lands between mapNew's mapping (whose
// size check catches a cut made before it) and its pre-faulting, so they
// are called here on the cut mapping. The writer beside them, whose
// records are in another segment, is not disturbed.
func TestPrefaultOnTruncatedFile(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	w := noneWriterWithRecords(t)
	const seq = 1000 // past the files the writer makes ahead
	f, path, err := w.create(seq)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mapSegment(f, path, seq, w.opts.SegmentSize, false)
	if err != nil {
		t.Fatal(err)
	}
	cut := int64(3 * os.Getpagesize())
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func() error
	}{
		{"populate", func() error { return w.populate(s, false) }},
		{"fill before publishing", func() error { return w.fill(s, true, nil) }},
		{"fill once published", func() error { return w.fill(s, false, nil) }},
	} {
		s.populated = 0
		err := c.run()
		var ce *segment.ChangedError
		if !errors.As(err, &ce) || err.Error() != prefaultErr(path, cut) {
			t.Errorf("%s of a file cut to %d bytes: %v; want %q", c.name, cut, err, prefaultErr(path, cut))
		}
	}
	if err := s.release(); err != nil {
		t.Fatal(err)
	}
	w.dropUnmappable(path)
	if err := w.Close(); err != nil {
		t.Fatalf("Close of the writer beside the cut file: %v", err)
	}
}

// The first segment of a SyncInterval writer is pre-faulted for 2 MiB at
// Open, the rest by the preparer once 256 KiB are appended (settle, which
// publishes nothing new: appenders are storing into it). Its file cut at
// 4 MiB in between, past the records, that fill meets the cut: the writer
// fails, naming the file and where it ends now, before an appender can
// reach the cut (and die of SIGBUS), and every record appended before is
// still in the file. Without the check the preparer ignored the madvise's
// EFAULT and went on to prepare the next segment.
func TestSettleOnTruncatedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	const size, cut = 8 << 20, 4 << 20
	w, err := Open(t.TempDir(), Options{SegmentSize: size, Sync: SyncInterval, SyncInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := w.cur.Load()
	if !s.undecided || s.populated != hugePage {
		t.Fatalf("first segment at Open: %d bytes pre-faulted (undecided %v), want 2 MiB and the rest left to settle", s.populated, s.undecided)
	}
	if err := os.Truncate(s.path, cut); err != nil {
		t.Fatal(err)
	}
	want := map[int64][]byte{}
	for i := 0; s.tail.Load() < yieldStride; i++ { // reaching it kicks the preparer
		p := fmt.Appendf(nil, "record %d %s", i, bytes.Repeat([]byte("y"), 900))
		pos, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		want[pos.Offset] = p
	}
	for deadline := time.Now().Add(time.Minute); w.failed.Load() == nil && s.next.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the preparer neither failed nor prepared the next segment")
		}
	}
	e := w.failed.Load()
	if e == nil || !errors.Is(*e, ErrFailed) || !errors.As(*e, new(*segment.ChangedError)) {
		t.Fatalf("writer whose segment was cut at %d: failure %v, next segment prepared %v; want ErrFailed: %s", cut, e, s.next.Load() != nil, prefaultErr(s.path, cut))
	}
	if want, got := fmt.Sprintf("%v: %s", ErrFailed, prefaultErr(s.path, cut)), (*e).Error(); got != want {
		t.Fatalf("failure %q, want %q", got, want)
	}
	if _, err := w.Append([]byte("after")); err != *e {
		t.Fatalf("Append after the failure: %v, want %v", err, *e)
	}
	if err := w.Close(); err != *e {
		t.Fatalf("Close: %v, want %v", err, *e)
	}
	im, err := segment.OpenImage(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	got := map[int64][]byte{}
	im.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame {
			got[ev.Offset] = bytes.Clone(ev.Frame.Payload)
		}
		return true
	})
	for off, p := range want {
		if !bytes.Equal(got[off], p) {
			t.Fatalf("record at %d: %q, want %q (%d of %d records found)", off, got[off], p, len(got), len(want))
		}
	}
}

// cutAtFallocate is the file system of a writer whose segment file at
// path is cut to 8 KiB by someone else just after the writer reserves it,
// which recovery does (remapUnused) between checking its size and mapping
// it again.
type cutAtFallocate struct {
	osFS
	path string
	cut  bool
}

func (c *cutAtFallocate) Fallocate(f *os.File, size int64) error {
	err := c.osFS.Fallocate(f, size)
	if err == nil && f.Name() == c.path {
		c.cut = true
		err = f.Truncate(8 << 10)
	}
	return err
}

// Open continues in a segment an earlier writer prepared and never used,
// pre-faulting it after mapping it again (remapUnused). Cut in between,
// the pre-faulting fails: Open returns an error naming the file and the
// offset, instead of dying of SIGBUS, and leaves the directory's files
// as they were.
func TestOpenPrefaultsTruncatedUnusedSegment(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	dir := t.TempDir()
	opts := Options{SegmentSize: 1 << 20, Sync: SyncNone, Logger: slog.New(slog.DiscardHandler)} // 1 MiB: nothing prepared at Open
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // nothing appended: the next Open continues in 1.seg
		t.Fatal(err)
	}
	names := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	before := names()
	path := filepath.Join(dir, segment.FileName(1))
	fs := &cutAtFallocate{path: path}
	opts.FS = fs
	w, err = Open(dir, opts)
	if err == nil {
		w.Close()
		t.Fatalf("Open after %s was cut: no error (cut: %v)", path, fs.cut)
	}
	if !fs.cut {
		t.Fatalf("Open did not reserve %s again (no hole punched?): %v", path, err)
	}
	if want := prefaultErr(path, 8<<10); err.Error() != want {
		t.Fatalf("Open after %s was cut: %v, want %q", path, err, want)
	}
	if after := names(); !slices.Equal(after, before) {
		t.Fatalf("files after the failed Open %v, before %v", after, before)
	}
}
