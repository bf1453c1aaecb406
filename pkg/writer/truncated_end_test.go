package writer

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// cutUnderAppenders is a writer whose active segment file was cut by
// someone else (FORMAT.md section 12, assumption 8) at a page boundary,
// cut, while it held committed records up to 64 bytes before it (want,
// by offset), a reservation r1 of 700 bytes from there across the cut,
// and one of 8 bytes, r2, wholly past it. r1 is left open, so the sealer
// waits at its commit word, before the cut, and never reads past it: the
// appending side's stores are the first to meet the cut. Its records may
// be as large as a segment allows.
type cutUnderAppenders struct {
	w      *Writer
	s      *seg
	cut    int64
	r1, r2 Reservation
	want   map[int64][]byte
}

func newCutUnderAppenders(t *testing.T) *cutUnderAppenders {
	t.Helper()
	w, err := Open(t.TempDir(), Options{SegmentSize: 1 << 20, MaxRecordSize: segment.MaxPayload(1 << 20), Sync: SyncNone, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c := &cutUnderAppenders{w: w, s: w.cur.Load(), want: map[int64][]byte{}}
	add := func(p []byte) {
		pos, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		c.want[pos.Offset] = p
	}
	for i := range 10 {
		add(fmt.Appendf(nil, "record %d %s", i, bytes.Repeat([]byte("x"), 500)))
	}
	page := int64(os.Getpagesize())
	c.cut = (c.s.tail.Load()/page + 1) * page
	if c.cut-64-c.s.tail.Load() < segment.FrameSize(0) {
		c.cut += page
	}
	add(bytes.Repeat([]byte("p"), int(c.cut-64-c.s.tail.Load()-segment.FrameHeaderSize))) // to 64 bytes before the cut
	if c.r1, err = w.Reserve(700); err != nil {
		t.Fatal(err)
	}
	if c.r2, err = w.Reserve(8); err != nil {
		t.Fatal(err)
	}
	if c.r1.off != c.cut-64 || c.r2.off <= c.cut {
		t.Fatalf("reservations at %d and %d, want %d and past %d", c.r1.off, c.r2.off, c.cut-64, c.cut)
	}
	if err := os.Truncate(c.s.path, c.cut); err != nil {
		t.Fatal(err)
	}
	return c
}

// check asserts that err, from the call whose store met the cut, is the
// writer's sticky failure naming the file and an offset in [lo, hi),
// found while appending (or, if sealer, by the sealer), that the writer
// keeps returning it and closes, and that the records committed before
// the cut are read back.
func (c *cutUnderAppenders) check(t *testing.T, err error, lo, hi int64, sealer bool) {
	t.Helper()
	var ce *segment.ChangedError
	if !errors.Is(err, ErrFailed) || !errors.As(err, &ce) || ce.Path != c.s.path || ce.Off < lo || ce.Off >= hi ||
		ce.While != appending && !(sealer && ce.While == "being sealed") {
		t.Fatalf("store past the cut at %d: %v; want ErrFailed: %s: changed while it was being appended to (truncated?): no data at an offset in [%d, %d)", c.cut, err, c.s.path, lo, hi)
	}
	if want := fmt.Sprintf("%v: %s: changed while it was %s (truncated?): no data at offset %d", ErrFailed, c.s.path, ce.While, ce.Off); err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if e := c.w.failed.Load(); e == nil || *e != err {
		t.Fatalf("sticky failure %v, the call returned %v", e, err)
	}
	if _, aerr := c.w.Append([]byte("after")); aerr != err {
		t.Fatalf("Append after the failure: %v, want %v", aerr, err)
	}
	if _, rerr := c.w.Reserve(8); rerr != err {
		t.Fatalf("Reserve after the failure: %v, want %v", rerr, err)
	}
	if cerr := c.w.Close(); cerr != err {
		t.Fatalf("Close: %v, want %v", cerr, err)
	}
	r, rerr := reader.Open(c.w.Dir(), reader.Options{})
	if rerr != nil {
		t.Fatal(rerr)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		rec := r.Record()
		if p, ok := c.want[rec.Position.Offset]; !ok || rec.Position.Seq != c.s.seq || !bytes.Equal(rec.Payload, p) {
			t.Fatalf("read %v %.40q, not a record committed before the cut", rec.Position, rec.Payload)
		}
		n++
	}
	if r.Err() != nil || n != len(c.want) {
		t.Fatalf("read %d of the %d records committed before the cut (reader: %v)", n, len(c.want), r.Err())
	}
}

// A store of the END frame or of Abort's PAD frame into a page the
// active segment's file lost under the writer fails the writer, naming
// the file and the offset, instead of killing the process with SIGBUS
// (each case in a child process, which dies without the guard). Append's,
// Reserve's and Commit's own stores are not guarded (guard.go: the cost),
// nor can a Reservation's Bytes be: r1's are never written here.
func TestEndAndAbortOnTruncatedSegment(t *testing.T) {
	for _, tc := range []struct {
		name string
		// run makes the call and returns the range its fault's offset
		// must be in, and its error.
		run func(c *cutUnderAppenders) (lo, hi int64, err error)
		// sealer: the sealer may meet the cut first. Close hands the
		// segment to it as END is stored, and with r1 open it looks for
		// frames committed behind r1 (progress for Close's timeout),
		// reading r2's commit word past the cut (seen once, under load).
		sealer bool
	}{
		{"END of a crossing Append", func(c *cutUnderAppenders) (int64, int64, error) {
			off := c.s.tail.Load() // END's claim, at the crossing claim's offset
			_, err := c.w.Append(make([]byte, c.s.dataLimit-off))
			return c.r2.off, off + 1, err
		}, true}, // as for Close: the rotation hands the segment to the sealer (seen in CI, r2's commit word first)
		{"Abort", func(c *cutUnderAppenders) (int64, int64, error) {
			return c.r2.off, c.r2.off + 1, c.r2.Abort()
		}, false},
		{"Close", func(c *cutUnderAppenders) (int64, int64, error) {
			off := c.s.tail.Load() // END's claim
			return c.r2.off, off + 1, c.w.Close()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !testfs.InChild(t) {
				return
			}
			c := newCutUnderAppenders(t)
			lo, hi, err := tc.run(c)
			c.check(t, err, lo, hi, tc.sealer)
		})
	}
}
