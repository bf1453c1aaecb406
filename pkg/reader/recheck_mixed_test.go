package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// AppendPayload and Clone check a copy against the frame's CRC with the
// seed and offset the reader kept for the record: a wrong one makes every
// intact record of that kind of segment fail the check, and tail refuse
// it. Here every kind is read, in order and in bulk, from the start, the
// last N and a time: archives (compress-finished; decompressed memory,
// not a mapping), a segment recovery sealed with a PAD frame over a dead
// writer's reservation, segments a writer sealed, and the segment a live
// writer appends to; records of every size, empty and page-straddling.
func TestAppendPayloadEveryKindOfSegment(t *testing.T) {
	dir := t.TempDir()
	want := map[segment.Position][]byte{}
	var order []segment.Position
	add := func(pos segment.Position, p []byte) {
		want[pos] = p
		order = append(order, pos)
	}
	size := func(i int) []byte {
		switch i % 9 {
		case 4:
			return nil
		case 7:
			return bytes.Repeat(fmt.Appendf(nil, "long %d;", i), 700) // 5 KiB and more: across pages
		}
		return payload(i)
	}

	// Segments 1 and 2 sealed; in 3 a reservation the writer dies with,
	// then records: recovery stores a PAD over it and seals 3.
	l := newLiveLog(t, dir, segSize)
	i := 0
	for ; l.seq < 3; i++ {
		r := l.append(size(i))
		add(r.pos, r.payload)
	}
	l.reserve(300)
	for range 5 {
		r := l.append(size(i))
		add(r.pos, r.payload)
		i++
	}
	l.die()
	l.close()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := segment.ReadFooter(filepath.Join(dir, segment.FileName(3))); err != nil {
		t.Fatalf("recovery did not seal segment 3: %v", err)
	}
	appendTo := func(seq uint64) {
		for {
			p := size(i)
			i++
			pos, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			add(pos, p)
			if pos.Seq >= seq {
				return
			}
		}
	}
	appendTo(7)
	waitSealedBelow(t, dir, 7)
	// Archive 1 and 2: the newest four sealed, the recovered 3 among
	// them, stay mapped segments.
	res, err := archive.Run(context.Background(), dir, archive.Options{Keep: 4, Jobs: 1})
	if err != nil || res.Failed != 0 || res.Done != 2 {
		t.Fatalf("compress-finished: %+v, %v", res, err)
	}
	for seq := range uint64(7) {
		_, err := os.Stat(filepath.Join(dir, segment.ArchiveName(seq)))
		if archived := seq == 1 || seq == 2; archived != (err == nil) {
			t.Fatalf("segment %d: archived %v, want %v", seq, err == nil, archived)
		}
	}
	appendTo(8) // the live segment holds records too
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}

	mid := order[len(order)/2]
	for _, c := range []struct {
		name string
		opts reader.Options
		from int // index in order of the first record read
	}{
		{"first", reader.Options{}, 0},
		{"last", reader.Options{Start: reader.Last(uint64(len(order) - len(order)/2))}, len(order) / 2},
		{"at", reader.Options{Start: reader.At(mid)}, len(order) / 2},
	} {
		for _, bulk := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/bulk=%v", c.name, bulk), func(t *testing.T) {
				got := readChecked(t, dir, c.opts, bulk)
				if len(got) != len(order)-c.from {
					t.Fatalf("%d records read, want %d", len(got), len(order)-c.from)
				}
				for k, pos := range order[c.from:] {
					if got[k].pos != pos || !bytes.Equal(got[k].payload, want[pos]) {
						t.Fatalf("record %d: %v %.40q (%d bytes), want %v %.40q (%d bytes)", k, got[k].pos, got[k].payload, len(got[k].payload), pos, want[pos], len(want[pos]))
					}
				}
			})
		}
	}
}

// readChecked reads dir to the end with opts, in bulk or not, and returns
// the records: those Next returns copied with AppendPayload and Clone
// (checkedCopy reports a failed check), those formatted in bulk as Append
// was given them. Damage fails the test: the log is intact.
func readChecked(t *testing.T, dir string, opts reader.Options, bulk bool) []rec {
	var mu sync.Mutex
	var bulkOut, out []rec
	opts.OnDamage = func(d reader.Damage) { t.Errorf("damage: %v", &d) }
	if bulk {
		opts.Bulk = &reader.Bulk{Workers: 2, Range: 4096,
			Append: func(dst []byte, pos reader.Position, ts int64, p []byte) []byte {
				mu.Lock()
				bulkOut = append(bulkOut, rec{pos: pos, ts: ts, payload: bytes.Clone(p)})
				mu.Unlock()
				return append(dst, 'x')
			},
			Write: func([]byte, reader.Position) error { return nil },
		}
	}
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		x := r.Record()
		out = append(out, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if bulk && len(bulkOut) == 0 {
		t.Fatal("nothing was read in bulk")
	}
	all := append(bulkOut, out...)
	slices.SortFunc(all, func(a, b rec) int { return a.pos.Compare(b.pos) })
	return all
}

// waitSealedBelow waits until every segment of dir below seq has a footer:
// the writer seals in the background.
func waitSealedBelow(t *testing.T, dir string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s := uint64(1); s < seq; {
		if _, err := segment.ReadFooter(filepath.Join(dir, segment.FileName(s))); err == nil {
			s++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %d not sealed after 30s", s)
		}
		time.Sleep(time.Millisecond)
	}
}
