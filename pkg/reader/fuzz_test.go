package reader_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// FuzzReader feeds arbitrary bytes to the reader as a segment file and
// checks that it never panics, terminates, returns records in strictly
// increasing positions inside the record area, and allocates a bounded
// amount whatever lengths the file claims. Run it with
//
//	go test ./pkg/reader -run '^$' -fuzz '^FuzzReader$' -fuzztime 60s
//
// layout selects how data becomes the file (see fuzzFile); start selects
// the Start option. Inputs stay small (the fuzzer minimizes slowly over
// large ones): a valid header is supplied by the layouts that need one.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.layout, s.start, s.data)
	}
	dir := f.TempDir() // inputs run one at a time in each worker process
	f.Fuzz(func(t *testing.T, layout, start uint8, data []byte) {
		file := fuzzFile(layout, data)
		p := filepath.Join(dir, segment.FileName(1))
		if err := os.WriteFile(p, file, 0o640); err != nil {
			t.Fatal(err)
		}
		opts := reader.Options{OnDamage: func(d reader.Damage) {
			if d.Error() == "" {
				t.Fatal("damage without text")
			}
		}}
		switch start % 6 {
		case 1:
			opts.Start = reader.Last(uint64(start) % 7)
		case 2:
			opts.Start = reader.At(segment.Position{Seq: 1, Offset: int64(start) * 8})
		case 3:
			opts.Start = reader.After(segment.Position{Seq: 1, Offset: int64(start) * 8})
		case 4:
			opts.Since = time.Unix(0, int64(start))
		case 5:
			opts.Start = reader.Skip(uint64(start) % 5)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		r, err := reader.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		var last segment.Position
		n := 0
		for r.Next() {
			x := r.Record()
			if n > 0 && x.Position.Compare(last) <= 0 {
				t.Fatalf("position %v after %v", x.Position, last)
			}
			if x.Position.Offset < segment.HeaderSize || len(x.Payload) > len(file) {
				t.Fatalf("record at %v with %d bytes", x.Position, len(x.Payload))
			}
			last = x.Position
			n++
		}
		if err := r.Err(); err != nil {
			t.Fatalf("non-strict reader stopped: %v", err)
		}
		r.Close()
		runtime.ReadMemStats(&ms)
		if a := ms.TotalAlloc - before; a > 1<<20 {
			t.Fatalf("allocated %d bytes for a %d-byte file", a, len(file))
		}
	})
}

type fuzzSeed struct {
	layout, start uint8
	data          []byte
}

// fuzzFile builds the segment file for one fuzz input: layout 0 is data
// itself; the others are a fresh minimum-size segment (valid header) with
// data laid from the start of the record area (1), also ending at the
// record limit where END frames live (2), or its last bytes over the end
// of the file: the last frames, END and the footer (3).
func fuzzFile(layout uint8, data []byte) []byte {
	if layout%4 == 0 {
		return data
	}
	img := segment.NewImage(1, segSize, baseTS)
	rl := segment.RecordLimit(segSize)
	switch layout % 4 {
	case 1:
		copy(img[segment.HeaderSize:rl], data)
	case 2:
		copy(img[segment.HeaderSize:rl], data)
		copy(img[rl-int64(min(len(data), 4096)):rl], data)
	case 3:
		n := min(int64(len(data)), segSize-segment.HeaderSize)
		copy(img[segSize-n:], data[int64(len(data))-n:])
	}
	return img
}

// fuzzSeeds are well-formed and typically damaged segments, cut to a few
// KiB: a file shorter than its header says is read as if zero-padded.
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	full := func(mod func(b *segBuilder)) []byte {
		b := newSeg(1)
		for i := range 20 {
			b.add(baseTS+int64(i), payload(i))
		}
		mod(b)
		return b.img
	}
	sealed := full(func(b *segBuilder) { b.seal(tb, [segment.DigestSize]byte{}) })
	torn := full(func(b *segBuilder) { b.img[segment.HeaderSize+30] ^= 0xff })
	reserved := full(func(b *segBuilder) { b.reserve(100); b.add(baseTS, []byte("after")) })
	hugeLen := full(func(b *segBuilder) { segment.StoreLength(b.img, b.off, 1<<30) })
	gap := full(func(b *segBuilder) { b.off += 64; b.add(baseTS, []byte("after a gap")) })
	// A header claiming more than the file holds (256 KiB, not 1 GiB, to
	// keep each run fast: the reader walks the zeros it is padded with).
	bigger := append([]byte(nil), sealed[:2048]...)
	segment.Header{Seq: 1, Size: 256 << 10, Created: baseTS}.Encode(bigger)
	// A full sealed segment: its last record ends at the data limit, so
	// END and the footer sit at the end of the file, where layout 3 puts
	// the input.
	fullSeg := newSeg(1)
	for fullSeg.fits(200) {
		fullSeg.add(baseTS, payload(1))
	}
	last := segment.DataLimit(segSize) - fullSeg.off - segment.FrameHeaderSize
	fullSeg.add(baseTS, make([]byte, last))
	fullSeg.seal(tb, [segment.DigestSize]byte{})
	tail := fullSeg.img[segSize-600:]
	var seeds []fuzzSeed
	for start := range uint8(6) {
		seeds = append(seeds,
			fuzzSeed{0, start, sealed[:2048]}, fuzzSeed{0, start, torn[:2048]}, fuzzSeed{0, start, reserved[:2048]},
			fuzzSeed{0, start, hugeLen[:2048]}, fuzzSeed{0, start, bigger}, fuzzSeed{0, start, sealed[:100]},
			fuzzSeed{1, start, sealed[segment.HeaderSize:1024]}, fuzzSeed{2, start, torn[segment.HeaderSize:1024]},
			fuzzSeed{1, start, gap[segment.HeaderSize:2048]}, fuzzSeed{3, start, tail},
			// In a file as long as its header says: recovery refuses a
			// shorter one, so its leftovers are torn, not reserved.
			fuzzSeed{1, start, reserved[segment.HeaderSize:2048]})
	}
	seeds = append(seeds, fuzzSeed{0, 0, nil}, fuzzSeed{1, 0, nil}, fuzzSeed{0, 0, []byte(segment.Magic)})
	return seeds
}

// TestFuzzSeedsMeaningful checks that the seeds reach what they are meant
// to: records, each kind of damage, and a sealed segment read from its
// footer.
func TestFuzzSeedsMeaningful(t *testing.T) {
	kinds := map[reader.DamageKind]bool{}
	records := 0
	for _, s := range fuzzSeeds(t) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), fuzzFile(s.layout, s.data), 0o640); err != nil {
			t.Fatal(err)
		}
		got, dmg := readAll(t, dir, reader.Options{})
		records += len(got)
		for _, d := range dmg {
			kinds[d.Kind] = true
		}
		if s.layout == 3 && len(got) == 0 {
			t.Errorf("layout 3 seed yields no record")
		}
	}
	for _, k := range []reader.DamageKind{reader.DamageTorn, reader.DamageReserved, reader.DamageGap, reader.DamageSegment} {
		if !kinds[k] {
			t.Errorf("no seed reaches %v damage", k)
		}
	}
	if records == 0 {
		t.Error("no seed yields records")
	}
}
