package reader_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// lineOf formats a record for the equivalence tests: everything a printer
// could use, so that any difference shows.
func lineOf(dst []byte, pos reader.Position, ts int64, payload []byte) []byte {
	return fmt.Appendf(dst, "%v %d %q\n", pos, ts, payload)
}

// recLine is lineOf for a record Next returned.
func recLine(rec *reader.Record) []byte {
	return lineOf(nil, rec.Position, rec.Time.UnixNano(), rec.Payload)
}

// readStream reads dir to the end and returns one text: each record's
// line and each damage report, in the order the caller would have seen
// them, then the reader's error. With bulk set, sealed segments go
// through Bulk (workers, rng) and the rest through Next; writes counts the
// Write calls.
func readStream(t testing.TB, dir string, opts reader.Options, bulk bool, workers int, rng int64) (text string, writes int) {
	t.Helper()
	var out bytes.Buffer
	opts.OnDamage = func(d reader.Damage) { fmt.Fprintf(&out, "! %v\n", &d) }
	if bulk {
		opts.Bulk = &reader.Bulk{Workers: workers, Range: rng, Append: lineOf,
			Write: func(p []byte, last reader.Position) error {
				lines := bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n"))
				if !bytes.HasPrefix(lines[len(lines)-1], []byte(last.String()+" ")) {
					t.Errorf("Write with last %v, but the last line is %q", last, lines[len(lines)-1])
				}
				writes++
				out.Write(p)
				return nil
			}}
	}
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		rec := r.Record()
		checkedCopy(t, rec)
		out.Write(recLine(&rec))
	}
	fmt.Fprintf(&out, "err: %v\n", r.Err())
	return out.String(), writes
}

// mappedFrom counts the mappings of files in dir the process holds.
func mappedFrom(t testing.TB, dir string) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), dir)
}

// patch overwrites bytes of segment seq's file at off.
func patch(t testing.TB, dir string, seq uint64, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, segment.FileName(seq)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// mixedPayload is mostly short records with a long one now and then, so
// that frames straddle range boundaries and some ranges hold no frame
// start at all.
func mixedPayload(i int) []byte {
	if i%97 == 5 {
		return bytes.Repeat(fmt.Appendf(nil, "long record %d;", i), 600) // about 10 KiB
	}
	return payload(i)
}

// bulkCase is a log to compare Bulk with Next on.
type bulkCase struct {
	name  string
	build func(t testing.TB, dir string) []rec
}

func bulkCases() []bulkCase {
	sealed := func(t testing.TB, dir string) []rec { return writeLogWith(t, dir, 3000, true, mixedPayload) }
	straddling := func(recs []rec, seq uint64, boundary int64) rec {
		for i, r := range recs[:len(recs)-1] {
			if r.pos.Seq == seq && r.pos.Offset < boundary && recs[i+1].pos.Seq == seq && recs[i+1].pos.Offset > boundary {
				return r
			}
		}
		panic("no frame straddles the boundary")
	}
	return []bulkCase{
		{"sealed", sealed},
		{"last-unsealed", func(t testing.TB, dir string) []rec { return writeLogWith(t, dir, 3000, false, mixedPayload) }},
		{"torn-frames", func(t testing.TB, dir string) []rec {
			recs := sealed(t, dir)
			for _, r := range []rec{recs[3], straddling(recs, 2, 4096), straddling(recs, 2, 8192), straddling(recs, 3, 12288), recs[len(recs)-1]} {
				patch(t, dir, r.pos.Seq, r.pos.Offset+segment.FrameHeaderSize+1, []byte{0xff})
			}
			// Two torn frames in a row, across a boundary.
			r := straddling(recs, 4, 16384)
			patch(t, dir, r.pos.Seq, r.pos.Offset+segment.FrameHeaderSize, []byte{0xff})
			patch(t, dir, r.pos.Seq, r.pos.Offset-8, []byte{0xff})
			return recs
		}},
		{"reserved-and-gaps", func(t testing.TB, dir string) []rec {
			recs := sealed(t, dir)
			for _, r := range []rec{straddling(recs, 1, 4096), recs[200]} {
				// A frame left reserved: the length word negated.
				var w [4]byte
				binary.LittleEndian.PutUint32(w[:], uint32(-int32(segment.FrameHeaderSize+len(r.payload))))
				patch(t, dir, r.pos.Seq, r.pos.Offset, w[:])
			}
			for _, r := range []rec{straddling(recs, 3, 8192), recs[900]} {
				// A claim never stored: the frame zeroed.
				patch(t, dir, r.pos.Seq, r.pos.Offset, make([]byte, segment.FrameSize(len(r.payload))))
			}
			return recs
		}},
		{"torn-end-and-footer", func(t testing.TB, dir string) []rec {
			recs := sealed(t, dir)
			im, err := segment.OpenImage(filepath.Join(dir, segment.FileName(2)))
			if err != nil {
				t.Fatal(err)
			}
			f, err := im.Footer()
			im.Close()
			if err != nil {
				t.Fatal(err)
			}
			patch(t, dir, 2, f.EndOffset+16, []byte{0xff})     // END's CRC fails
			patch(t, dir, 3, segSize-8, []byte{0xff, 0xff, 0}) // footer damaged: read in order
			// Zeros from a record to the record limit, under an intact
			// footer: the tail, which only Next can judge.
			r := straddling(recs, 5, 8192)
			patch(t, dir, 5, r.pos.Offset, make([]byte, segment.RecordLimit(segSize)-r.pos.Offset))
			return recs
		}},
		{"long-frames", func(t testing.TB, dir string) []rec {
			// Frames longer than the slack a bulk worker's copy of a range
			// has past its end: read from the mapping instead.
			return writeLogSize(t, dir, 256<<10, 140, true, func(i int) []byte {
				if i%5 == 2 {
					return bytes.Repeat(fmt.Appendf(nil, "%d;", i), 17000+i*9)
				}
				return payload(i)
			})
		}},
		{"bad-missing-archived", func(t testing.TB, dir string) []rec {
			recs := sealed(t, dir)
			patch(t, dir, 2, 0, []byte("NOTASEGM"))
			if err := os.Remove(filepath.Join(dir, segment.FileName(4))); err != nil {
				t.Fatal(err)
			}
			for _, seq := range []uint64{5, 6} {
				data, err := os.ReadFile(filepath.Join(dir, segment.FileName(seq)))
				if err != nil {
					t.Fatal(err)
				}
				archiveSegment(t, dir, seq, data)
			}
			return recs
		}},
	}
}

// TestBulkSameAsNext: for logs with every kind of damage, every start
// option, several worker counts and range sizes, the text a caller sees
// with Bulk (output and damage reports interleaved) is byte for byte what
// it sees reading record by record; and no segment stays mapped.
func TestBulkSameAsNext(t *testing.T) {
	for _, c := range bulkCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			recs := c.build(t, dir)
			if recs[len(recs)-1].pos.Seq < 6 {
				t.Fatalf("only %d segments", recs[len(recs)-1].pos.Seq)
			}
			mid := recs[len(recs)/3]
			starts := map[string]reader.Options{
				"first":  {},
				"skip":   {Start: reader.Skip(uint64(len(recs) / 2))},
				"last":   {Start: reader.Last(uint64(len(recs) / 2))},
				"at":     {Start: reader.At(mid.pos)},
				"after":  {Start: reader.After(mid.pos)},
				"since":  {Since: time.Unix(0, mid.ts)},
				"strict": {Strict: true},
			}
			bulkWrites := 0
			for sname, opts := range starts {
				want, _ := readStream(t, dir, opts, false, 0, 0)
				// Ranges smaller than most frames (many start inside one),
				// about a frame, and whole segments.
				for _, w := range []struct{ workers, rng int64 }{{3, 200}, {2, 1000}, {3, 4096}, {1, 1 << 20}} {
					got, writes := readStream(t, dir, opts, true, int(w.workers), w.rng)
					bulkWrites += writes
					if got != want {
						t.Fatalf("%s, %d workers, range %d: bulk output differs:\n%s", sname, w.workers, w.rng, firstDiff(got, want))
					}
				}
			}
			// One segment file on its own, as `tail FILE` reads it.
			one := filepath.Join(dir, segment.FileName(2))
			if _, err := os.Stat(one); err == nil {
				want, _ := readStream(t, one, reader.Options{}, false, 0, 0)
				got, writes := readStream(t, one, reader.Options{}, true, 2, 4096)
				if got != want {
					t.Fatalf("segment file %s: bulk output differs:\n%s", one, firstDiff(got, want))
				}
				if c.name == "sealed" && writes == 0 {
					t.Fatalf("sealed segment file %s was not read in bulk", one)
				}
			}
			if bulkWrites == 0 {
				t.Fatal("no segment was read in bulk")
			}
			if n := mappedFrom(t, dir); n != 0 {
				t.Fatalf("%d mappings of the log's files left", n)
			}
		})
	}
}

// firstDiff shows where two texts part.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}

// TestBulkWriteErrorStops: an error from Write stops the reader with it,
// and releases every segment.
func TestBulkWriteErrorStops(t *testing.T) {
	dir := t.TempDir()
	writeLogWith(t, dir, 3000, true, mixedPayload)
	boom := errors.New("disk full")
	calls := 0
	r, err := reader.Open(dir, reader.Options{Bulk: &reader.Bulk{Range: 4096, Append: lineOf,
		Write: func([]byte, reader.Position) error {
			if calls++; calls == 5 {
				return boom
			}
			return nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Next() {
		t.Fatal("Next returned a record after Write failed")
	}
	if !errors.Is(r.Err(), boom) || calls != 5 {
		t.Fatalf("Err = %v after %d calls", r.Err(), calls)
	}
	r.Close()
	if n := mappedFrom(t, dir); n != 0 {
		t.Fatalf("%d mappings of the log's files left", n)
	}
}

// TestBulkWithoutAppendOrWriteRefused: a Bulk missing Append or Write is
// refused by Open, naming the missing field, rather than reading: a nil
// Append was called on a worker goroutine, a panic no caller can recover
// that killed the process; a nil Write panicked in Next.
func TestBulkWithoutAppendOrWriteRefused(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, true)
	write := func([]byte, reader.Position) error { return nil }
	for _, c := range []struct {
		missing string
		bulk    reader.Bulk
	}{
		{"Append", reader.Bulk{Write: write}},
		{"Write", reader.Bulk{Append: lineOf}},
		{"Append", reader.Bulk{}},
	} {
		r, err := reader.Open(dir, reader.Options{Bulk: &c.bulk})
		if err == nil {
			r.Next()
			r.Close()
			t.Fatalf("Bulk without %s: Open succeeded", c.missing)
		}
		if !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), "Bulk."+c.missing) {
			t.Fatalf("Bulk without %s: Open: %v, want os.ErrInvalid naming Bulk.%s", c.missing, err, c.missing)
		}
	}
}

// TestBulkFollowLiveWriter: a follower with Bulk, started on a log with
// sealed and archived segments while a writer appends and rotates, gets
// every record once, in order: the sealed ones in bulk, the live segment
// by Next.
func TestBulkFollowLiveWriter(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	defer l.close()
	l.archive = true
	var want bytes.Buffer
	add := func(i int) {
		r := l.append(mixedPayload(i))
		want.Write(lineOf(nil, r.pos, r.ts, r.payload))
	}
	for i := range 2000 {
		add(i)
	}
	// Write and the records of Next come from the same goroutine: one
	// text in the order the follower produced it.
	var mu sync.Mutex
	var got bytes.Buffer
	put := func(p []byte) {
		mu.Lock()
		got.Write(p)
		mu.Unlock()
	}
	bulkWrites := 0
	r, err := reader.Open(dir, reader.Options{Follow: true, Bulk: &reader.Bulk{Range: 4096, Append: lineOf,
		Write: func(p []byte, _ reader.Position) error { bulkWrites++; put(p); return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		defer r.Close()
		for x, err := range r.All(ctx) {
			if err != nil {
				done <- err
				return
			}
			put(recLine(&x))
		}
		done <- nil
	}()
	for i := 2000; i < 4000; i++ {
		add(i)
		if i%500 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		g := got.String()
		mu.Unlock()
		if g == want.String() {
			break
		}
		if time.Now().After(deadline) || len(g) > want.Len() {
			t.Fatalf("follower output differs:\n%s", firstDiff(g, want.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if bulkWrites == 0 {
		t.Fatal("nothing was read in bulk")
	}
	if r.Damaged() != 0 {
		t.Fatalf("%d damage reports", r.Damaged())
	}
}

// TestBulkHugeWorkers: a Workers count far beyond any machine (a
// configuration error, an overflowed computation) reads as a sane one
// does. The count sized the run's channels: 1<<40 workers asked for
// terabytes and the process died of a fatal out-of-memory error.
func TestBulkHugeWorkers(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, true)
	want, _ := readStream(t, dir, reader.Options{}, false, 0, 0)
	for _, w := range []int{1 << 40, 1<<62 + 1} {
		if got, _ := readStream(t, dir, reader.Options{}, true, w, 0); got != want {
			t.Errorf("Workers %d: the output differs from a read without Bulk", w)
		}
	}
}
