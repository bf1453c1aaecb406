package crashtest

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A simulated power cut, page by page (ALICE-style, without reordering
// inside a page). SIGKILL keeps the page cache; a power cut keeps only what
// reached the disk. The model: an msync or fsync that has returned made
// durable what its range held when it began (a lower bound: the writer
// counts only frames committed before a flush began as covered by it); one
// still in progress may have written any of its pages; and any page may
// hold any later contents, because the kernel writes dirty pages back when
// it likes. So a power cut at instant T leaves, for every page of every
// segment file, its contents at the last returned flush that covered it
// (zeros if none did: the files are fallocated), or what a flush in
// progress at T was writing there, or its contents at T. The test builds
// such images with random choices per page, recovers them with
// writer.Open, reads them back and checks the durability claims:
//
//   - SyncAlways: every record whose Append returned before T is intact
//     at its position;
//   - SyncInterval: every record appended before a Sync that returned
//     before T is intact;
//   - every mode: recovery succeeds, no record is invented (the reader
//     returns only payloads some Append wrote, each at its position), and
//     under SyncAlways and SyncInterval no sealed segment's footer or chain
//     is wrong.
//
// The choice is made per 4 KiB page in some images and per 512-byte
// sector in others: a device whose atomic write unit is a sector may tear
// a page, leaving part of it old and part new. Committed frames never
// change once written, so only what no flush had yet made durable can be
// torn; the frame CRCs must catch it.
//
// It fails if SyncAlways returns before flushing, or if msync or fsync
// coverage goes missing (checked by breaking each once). Not modelled:
// tears inside a sector; directory entries (every segment name the
// writer uses was fsynced into the directory before any record went into
// it); the order of pages inside one flush beyond the in-progress case, so
// the seal's records-then-footer order is left to
// TestSealMakesRecordsDurableBeforeTheFooter.
type powerCut struct {
	mu      sync.Mutex
	durable map[string][]byte // segment path → what completed flushes made durable
	pending map[flushID]flush // flushes begun and not yet returned
}

type flushID struct {
	op Op
	n  int
}

// flush is what one msync or fsync makes durable once it returns.
type flush struct {
	path string
	off  int64
	data []byte
}

func (pc *powerCut) before(c Call) {
	var fl flush
	switch c.Op {
	case OpMsync:
		path, off, ok := mappedFile(c.Msync)
		if !ok {
			return
		}
		fl = flush{path, off, bytes.Clone(c.Msync)}
	case OpFsync:
		// The writer fsyncs through the handle it created under the
		// temporary name; after the rename the data is under the final one.
		final := strings.TrimSuffix(c.Path, segment.TempExt)
		b, err := os.ReadFile(c.Path)
		if err != nil {
			b, err = os.ReadFile(final)
		}
		if err != nil {
			return
		}
		fl = flush{final, 0, b}
	default:
		return
	}
	pc.mu.Lock()
	pc.pending[flushID{c.Op, c.N}] = fl
	pc.mu.Unlock()
}

func (pc *powerCut) after(c Call) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	id := flushID{c.Op, c.N}
	fl, ok := pc.pending[id]
	if !ok {
		return
	}
	delete(pc.pending, id)
	if c.Err != nil {
		return
	}
	d := pc.durable[fl.path]
	if n := fl.off + int64(len(fl.data)); int64(len(d)) < n {
		d = append(d, make([]byte, n-int64(len(d)))...)
		pc.durable[fl.path] = d
	}
	copy(d[fl.off:], fl.data)
}

// mappedFile finds the file and offset that address range b maps, from
// /proc/self/maps.
func mappedFile(b []byte) (string, int64, bool) {
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || addr < start || addr >= end {
			continue
		}
		return fields[5], int64(off + addr - start), true
	}
	return "", 0, false
}

// freeze returns what is durable now and the flushes in progress: the
// flushes the writer makes after the cut must not count.
func (pc *powerCut) freeze() (map[string][]byte, []flush) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	out := make(map[string][]byte, len(pc.durable))
	for p, d := range pc.durable {
		out[p] = bytes.Clone(d)
	}
	var inFlight []flush
	for _, fl := range pc.pending {
		inFlight = append(inFlight, flush{fl.path, fl.off, bytes.Clone(fl.data)})
	}
	return out, inFlight
}

// cut writes into dst what a power cut may leave of the log in src, given
// what was durable, the flushes in progress and what the files held at the
// instant of the cut: for each unit of bytes (a page, or a sector), at
// random, its durable contents (zeros if no flush covered it), or what a
// flush in progress was writing, or its contents at the cut.
func cut(t *testing.T, rng *rand.Rand, src, dst string, durable map[string][]byte, inFlight []flush, current map[string][]byte, page int) {
	t.Helper()
	for path, cur := range current {
		img := make([]byte, len(cur))
		copy(img, durable[path])
		for p := 0; p < len(cur); p += page {
			q := min(p+page, len(cur))
			switch rng.IntN(3) {
			case 0:
				copy(img[p:q], cur[p:q])
			case 1:
				for _, fl := range inFlight {
					lo, hi := max(int64(p), fl.off), min(int64(q), fl.off+int64(len(fl.data)))
					if fl.path == path && lo < hi {
						copy(img[lo:hi], fl.data[lo-fl.off:hi-fl.off])
					}
				}
			}
		}
		rel, _ := filepath.Rel(src, path)
		if err := os.WriteFile(filepath.Join(dst, rel), img[:len(cur)], 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPowerCut(t *testing.T) {
	trials := max(iterations(12)/3, 1)
	var figs []string
	for _, mode := range []writer.SyncMode{writer.SyncAlways, writer.SyncInterval, writer.SyncNone} {
		acked, images := 0, 0
		for trial := range trials {
			a, n := powerCutTrial(t, mode, uint64(trial))
			acked, images = acked+a, images+n
		}
		figs = append(figs, fmt.Sprintf("%v: images=%d durable_records_checked=%d (none lost)", mode, images, acked))
	}
	t.Logf("SUMMARY TestPowerCut: trials_per_mode=%d %s", trials, strings.Join(figs, " "))
}

// powerCutTrial appends from four goroutines until a random instant, cuts
// the power there (several images), and checks each image. It returns how
// many durable records were checked and how many images were made.
func powerCutTrial(t *testing.T, mode writer.SyncMode, seed uint64) (int, int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(mode)))
	src := t.TempDir()
	pc := &powerCut{durable: map[string][]byte{}, pending: map[flushID]flush{}}
	fs := &FaultFS{Before: pc.before, After: pc.after}
	const size = 64 << 10
	// CloseTimeout: under the full CI load (every package's tests at once,
	// the disk saturated) Close once gave up after the default 10 s
	// without the sealer's progress; the dump below is for that case.
	w, err := writer.Open(src, writer.Options{SegmentSize: size, Sync: mode, SyncInterval: time.Millisecond, FS: fs, CloseTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	written := map[segment.Position][]byte{} // every record Append placed
	durable := map[segment.Position][]byte{} // those promised durable
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var pending []segment.Position
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := []byte(fmt.Sprintf("power cut trial %d goroutine %d record %d %s", seed, g, i, strings.Repeat("x", (i*37)%300)))
				pos, err := w.Append(p)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written[pos] = p
				if mode == writer.SyncAlways {
					durable[pos] = p
				}
				mu.Unlock()
				pending = append(pending, pos)
				// With SyncNone only a Sync promises anything: half the
				// goroutines call it, so unflushed pages are cut too.
				if (mode == writer.SyncInterval || mode == writer.SyncNone && g < 2) && i%16 == 15 {
					if err := w.Sync(); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, q := range pending {
						durable[q] = written[q]
					}
					mu.Unlock()
					pending = pending[:0]
				}
			}
		})
	}
	time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
	// The instant of the cut: what was promised by now, then what the files
	// hold now (any later contents is a state the disk may have too).
	mu.Lock()
	promised := make(map[segment.Position][]byte, len(durable))
	for p, b := range durable {
		promised[p] = b
	}
	mu.Unlock()
	frozen, inFlight := pc.freeze()
	current := map[string][]byte{}
	l, err := segment.List(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Segments {
		if b, err := os.ReadFile(e.Path); err == nil {
			current[e.Path] = b
		}
	}
	close(stop)
	wg.Wait()
	if err := w.Close(); err != nil {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1) // where the sealer is stuck
		t.Fatal(err)
	}
	const images = 4
	for k := range images {
		dst := t.TempDir()
		unit := 4096 // a page; every other image tears pages at sectors
		if k%2 == 1 {
			unit = 512
		}
		cut(t, rng, src, dst, frozen, inFlight, current, unit)
		checkPowerCut(t, fmt.Sprintf("%v trial %d image %d (%d-byte units)", mode, seed, k, unit), dst, mode, promised, written)
	}
	return len(promised), images
}

func checkPowerCut(t *testing.T, name, dir string, mode writer.SyncMode, promised, written map[segment.Position][]byte) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("%s: recovery: %v", name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s: close after recovery: %v", name, err)
	}
	damaged := map[int64]bool{} // by sequence number
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { damaged[int64(d.Seq)] = true }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[segment.Position]bool{}
	for r.Next() {
		rec := r.Record()
		want, ok := written[rec.Position]
		if !ok || !bytes.Equal(rec.Payload, want) {
			t.Fatalf("%s: record at %v (%q) was never appended there", name, rec.Position, rec.Payload)
		}
		got[rec.Position] = true
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: reader: %v", name, err)
	}
	r.Close()
	for p := range promised {
		if !got[p] {
			t.Fatalf("%s: durable record at %v lost (%d promised, %d read back)", name, p, len(promised), len(got))
		}
	}
	if mode == writer.SyncNone {
		return
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Class == verify.Footer || f.Class == verify.Chain {
			t.Fatalf("%s: %s finding after a power cut: %+v", name, f.Class, f)
		}
	}
}
