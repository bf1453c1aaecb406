package writer

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

func TestPagePolicy(t *testing.T) {
	const filled = 64 << 20 // 32 huge pages of frames
	for _, c := range []struct {
		name   string
		mode   SyncMode
		last   *[2]int64 // bytes, flushes of the last segment to fill
		active *[2]int64 // bytes, flushes of the active segment so far
		want   bool
	}{
		{"always, at Open", SyncAlways, nil, nil, false},
		{"always, after a segment filled unflushed", SyncAlways, &[2]int64{filled, 0}, nil, false},
		{"none, at Open", SyncNone, nil, nil, true},
		{"interval, at Open", SyncInterval, nil, nil, false},
		{"interval, active empty", SyncInterval, nil, &[2]int64{0, 0}, false},
		{"interval, 256 KiB unflushed", SyncInterval, nil, &[2]int64{256 << 10, 0}, true},
		{"interval, 256 KiB after a flush", SyncInterval, nil, &[2]int64{256 << 10, 1}, false},
		{"interval, 4 MiB after 2 flushes", SyncInterval, nil, &[2]int64{4 << 20, 2}, true},
		{"none, one flush per 2 MiB", SyncNone, &[2]int64{filled, 32}, nil, true},
		{"interval, one more", SyncInterval, &[2]int64{filled, 33}, nil, false},
		{"history over the active segment", SyncNone, &[2]int64{filled, 1000}, &[2]int64{256 << 10, 0}, false},
		// Opened two intervals ago: two flushes to come, or done.
		{"interval, 256 KiB in two intervals", SyncInterval, nil, &[2]int64{256 << 10, -2}, false},
		{"interval, 8 MiB in two intervals", SyncInterval, nil, &[2]int64{8 << 20, -2}, true},
		{"none, 256 KiB in two intervals", SyncNone, nil, &[2]int64{256 << 10, -2}, true},
	} {
		p := pagePolicy{interval: time.Hour, opened: time.Now()}
		mk := func(v [2]int64) *seg {
			s := &seg{dataLimit: 1 << 40}
			s.tail.Store(segment.HeaderSize + v[0])
			if v[1] < 0 { // no flush yet, -v[1] intervals since Open
				p.opened = p.opened.Add(time.Duration(v[1]) * p.interval)
				v[1] = 0
			}
			s.flushes.Store(v[1])
			return s
		}
		if c.last != nil {
			p.rotated(mk(*c.last))
		}
		var active *seg
		if c.active != nil {
			active = mk(*c.active)
		}
		if got := p.huge(c.mode, active); got != c.want {
			t.Errorf("%s: huge %v, want %v", c.name, got, c.want)
		}
	}
}

// hugeAdvised reports whether the mapping of path in this process was
// given MADV_HUGEPAGE (VmFlags "hg" in /proc/self/smaps), at its start.
func hugeAdvised(t *testing.T, path string) bool {
	t.Helper()
	return fileVMAs(t, path)[0].hg
}

// vma is one mapping of a file in /proc/self/smaps.
type vma struct {
	off, size int64 // the file range it maps
	hg        bool  // MADV_HUGEPAGE
	rss       int64 // resident bytes
}

// fileVMAs lists this process's mappings of path.
func fileVMAs(t *testing.T, path string) []vma {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	var out []vma
	var cur *vma
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") { // a mapping's first line; anonymous ones name no file
			cur = nil
			if len(fields) < 6 || fields[len(fields)-1] != path {
				continue
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			off, err3 := strconv.ParseInt(fields[2], 16, 64)
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatalf("smaps line %q", line)
			}
			out = append(out, vma{off: off, size: int64(b - a)})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q", line)
			}
			cur.rss = kb << 10
		}
		if strings.HasPrefix(line, "VmFlags:") {
			cur.hg = strings.Contains(line, " hg")
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s is not mapped", path)
	}
	return out
}

// TestFirstSegmentSettles: the first segment of a SyncInterval writer is
// populated for 2 MiB in 4 KiB pages at Open, the rest advised 2 MiB pages;
// the rest is populated once the segment shows its rate, in 2 MiB pages
// for a fast writer and in 4 KiB pages for a slow one, whose interval
// flushes would otherwise write 2 MiB each.
func TestFirstSegmentSettles(t *testing.T) {
	const size = 16 << 20
	p := make([]byte, 1000)
	for _, c := range []struct {
		name     string
		interval time.Duration
		pause    time.Duration // between appends
		huge     bool
	}{
		{"fast", time.Hour, 0, true},
		{"slow", 5 * time.Millisecond, 2 * time.Millisecond, false}, // ~500 KB/s: 2.5 KB an interval
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(dir, Options{Sync: SyncInterval, SegmentSize: size, SyncInterval: c.interval})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			path := filepath.Join(dir, segment.FileName(1))
			vs := fileVMAs(t, path)
			var rss int64
			for _, v := range vs {
				rss += v.rss
				if v.hg != (v.off >= hugePage) {
					t.Errorf("at Open: file range [%d, %d): 2 MiB pages advised %v", v.off, v.off+v.size, v.hg)
				}
			}
			if rss < hugePage || rss > hugePage+64<<10 {
				t.Fatalf("at Open: %d bytes resident, want the first 2 MiB", rss)
			}
			for w.cur.Load().tail.Load() <= yieldStride {
				if _, err := w.Append(p); err != nil {
					t.Fatal(err)
				}
				time.Sleep(c.pause)
			}
			for deadline := time.Now().Add(time.Minute); w.cur.Load().next.Load() == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the next segment was not prepared")
				}
			}
			rss = 0
			for _, v := range fileVMAs(t, path) {
				rss += v.rss
				if want := c.huge && v.off >= hugePage; v.hg != want {
					t.Errorf("file range [%d, %d): 2 MiB pages advised %v, want %v", v.off, v.off+v.size, v.hg, want)
				}
			}
			if rss < size-hugePage {
				t.Errorf("%d bytes of the first segment resident, want it populated (%d)", rss, size)
			}
		})
	}
}

// TestSegmentPageSize: a flush writes every 2 MiB page a store touched, so
// SyncAlways maps its segments in 4 KiB pages, SyncNone in 2 MiB pages,
// SyncInterval in 4 KiB pages until a segment has filled in few enough
// flushes, and a writer whose Sync calls grow frequent goes back to 4 KiB
// pages for the segments it maps after the one that showed it.
func TestSegmentPageSize(t *testing.T) {
	const size = 4 << 20
	p := make([]byte, 1000)
	open := func(mode SyncMode) (*Writer, string) {
		dir := t.TempDir()
		w, err := Open(dir, Options{Sync: mode, SegmentSize: size, SyncInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w, dir
	}
	path := func(dir string, seq uint64) string { return filepath.Join(dir, segment.FileName(seq)) }
	// fill appends until segment seq is active and past the first yield
	// boundary (which asks for the next segment), then waits for the next
	// one to be mapped, calling Sync every syncEvery records (0: never).
	fill := func(w *Writer, seq uint64, syncEvery int) {
		for i := 1; w.cur.Load().seq < seq || w.cur.Load().tail.Load() <= yieldStride; i++ {
			if _, err := w.Append(p); err != nil {
				t.Fatal(err)
			}
			if syncEvery > 0 && i%syncEvery == 0 {
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		for deadline := time.Now().Add(time.Minute); w.cur.Load().next.Load() == nil; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("segment %d: the next one was not prepared", seq)
			}
		}
	}

	w, dir := open(SyncAlways)
	fill(w, 1, 0)
	if hugeAdvised(t, path(dir, 1)) || hugeAdvised(t, path(dir, 2)) {
		t.Error("SyncAlways: a segment mapped in 2 MiB pages")
	}

	w, dir = open(SyncNone)
	fill(w, 1, 0)
	if !hugeAdvised(t, path(dir, 1)) {
		t.Error("SyncNone: the first segment is not mapped in 2 MiB pages")
	}
	// Sync after every 20 records (~20 KB): segment 2 fills in ~200
	// flushes, so segment 4, mapped once it has, uses 4 KiB pages.
	fill(w, 2, 0)
	fill(w, 3, 20)
	if !hugeAdvised(t, path(dir, 3)) {
		t.Error("SyncNone: segment 3, mapped after a segment filled without a flush, is not in 2 MiB pages")
	}
	if hugeAdvised(t, path(dir, 4)) {
		t.Error("SyncNone: segment 4, mapped after one that took a flush per 20 KB, is in 2 MiB pages")
	}

	w, dir = open(SyncInterval)
	fill(w, 1, 0) // no flush at all: the interval is an hour
	if hugeAdvised(t, path(dir, 1)) {
		t.Error("SyncInterval: the first segment is mapped in 2 MiB pages")
	}
	if !hugeAdvised(t, path(dir, 2)) {
		t.Error("SyncInterval: segment 2, mapped after 256 KiB without a flush, is not in 2 MiB pages")
	}

	// A slow log: 1 KB every 2 ms against a 1 ms interval, a flush or two
	// per record, when segment 2 is mapped.
	dir = t.TempDir()
	w, err := Open(dir, Options{Sync: SyncInterval, SegmentSize: size, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for w.cur.Load().tail.Load() <= yieldStride {
		if _, err := w.Append(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Minute); w.cur.Load().next.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("slow log: segment 2 was not prepared")
		}
	}
	if n := w.cur.Load().flushes.Load(); n < 2 || hugeAdvised(t, path(dir, 2)) {
		t.Errorf("SyncInterval, a slow log (%d flushes): segment 2 is mapped in 2 MiB pages", n)
	}
}

// processWriteBytes is what this process has caused to be written to
// storage (/proc/self/io), or -1.
func processWriteBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// TestSyncAlwaysWritesLittle: under SyncAlways each append's flush writes
// about the page that changed, not a 2 MiB page (which it did when
// segments were mapped in 2 MiB pages whatever the mode: 2 MiB an append).
func TestSyncAlwaysWritesLittle(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{Sync: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendsWriteLittle(t, w, dir, 200)
}

// appendsWriteLittle makes n appends of 100 bytes under SyncAlways and
// fails if they wrote more than 32 KiB each to the disk on average.
func appendsWriteLittle(t *testing.T, w *Writer, dir string, n int64) {
	t.Helper()
	p := make([]byte, 100)
	writesPerAppend(t, dir, len(p), 32<<10, func() int64 {
		for range n {
			if _, err := w.Append(p); err != nil {
				t.Fatal(err)
			}
		}
		return n
	})
}

// writesPerAppend runs appends, which returns how many appends of size
// bytes it made, and fails if they wrote more than limit bytes each to
// the disk on average (skipping where writes are not accounted).
func writesPerAppend(t *testing.T, dir string, size int, limit int64, appends func() int64) {
	t.Helper()
	before := processWriteBytes()
	n := appends()
	after := processWriteBytes()
	if before < 0 || after <= before {
		t.Skipf("no write accounting for %s here (/proc/self/io write_bytes %d -> %d: tmpfs?)", dir, before, after)
	}
	if per := (after - before) / n; per > limit {
		t.Fatalf("%d appends of %d bytes under SyncAlways wrote %d bytes, %d per append (want at most %d)", n, size, after-before, per, limit)
	}
}

// TestReaderOfCreatedFileDoesNotSetPageSize: the file of the segment after
// next is created ahead and visible before the writer maps it, and a
// reader may map it in 2 MiB pages (this package's readers no longer do:
// they read such files, and map only sealed ones so; another program
// might), which reads its start into a 2 MiB page. The writer must still
// flush that segment by 4 KiB under SyncAlways.
func TestReaderOfCreatedFileDoesNotSetPageSize(t *testing.T) {
	const size = 4 << 20
	dir := t.TempDir()
	w, err := Open(dir, Options{Sync: SyncAlways, SegmentSize: size})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	big := make([]byte, 64<<10)
	ahead := filepath.Join(dir, segment.FileName(3))
	for {
		if _, err := os.Stat(ahead); err == nil {
			break
		}
		if w.cur.Load().seq >= 2 {
			t.Fatal("segment 2 is active and segment 3's file was not created ahead")
		}
		if _, err := w.Append(big); err != nil {
			t.Fatal(err)
		}
	}
	// Its page cache holds the clean header page, which the kernel may
	// evict at any time; evicted, nothing keeps the reader's read below
	// from making a 2 MiB folio of the file's start.
	if f, err := os.Open(ahead); err == nil {
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
	f, err := os.Open(ahead)
	if err != nil {
		t.Fatal(err)
	}
	m, err := segment.MapFile(f, size, false, true) // in 2 MiB pages
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := segment.DecodeHeader(m[:segment.HeaderSize]); err != nil { // reads its start
		t.Fatal(err)
	}
	if err := segment.Unmap(m); err != nil {
		t.Fatal(err)
	}
	for w.cur.Load().seq < 3 {
		if _, err := w.Append(big); err != nil {
			t.Fatal(err)
		}
	}
	// What the rotation set off writes too (segment 2's seal, segment 4's
	// preparation): not the appends' doing, so it is let finish first.
	sealed2 := filepath.Join(dir, segment.FileName(2))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := segment.ReadFooter(sealed2); err == nil && w.cur.Load().next.Load() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("segment 2 was not sealed, or segment 4 not prepared, within a minute")
		}
	}
	// And the files created ahead, whose header writes would count: the
	// creator makes them up to two past the one the preparer maps next
	// (5), so 6 is its last until a rotation, named once written.
	last := filepath.Join(dir, segment.FileName(6))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(last); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("segment 6's file was not created ahead within a minute")
		}
	}
	appendsWriteLittle(t, w, dir, 50) // at the start of segment 3
}

// TestUnusedSegmentTakesTheNewPageSize: Close leaves the prepared segment
// for the next Open to continue in, populated in the page size of the
// writer that prepared it. A SyncAlways writer continuing in one that a
// SyncNone writer populated in 2 MiB pages wrote 2 MiB an append; the
// segment's pages are now given back first, and it stays reserved in full.
func TestUnusedSegmentTakesTheNewPageSize(t *testing.T) {
	const size = 8 << 20
	dir := t.TempDir()
	a, err := Open(dir, Options{Sync: SyncNone, SegmentSize: size})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<10)
	for a.cur.Load().tail.Load() <= yieldStride {
		if _, err := a.Append(big); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(time.Minute); a.cur.Load().next.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("segment 2 was not prepared")
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, Options{Sync: SyncAlways, SegmentSize: size})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if seq := b.cur.Load().seq; seq != 2 {
		t.Fatalf("the second writer appends to segment %d, want the unused segment 2", seq)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, segment.FileName(2)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < size {
		t.Fatalf("segment 2 has %d bytes of disk reserved, want all %d", st.Blocks*512, size)
	}
	appendsWriteLittle(t, b, dir, 50)
}

// TestFollowersDoNotSetPageSize: followers at the end of the log look at
// the files the writer created ahead for a first frame or a footer. They
// used to map them (in 2 MiB pages) to do so, and a mapping around the
// time the writer drops such a file's page cache and maps it can leave
// the writer 2 MiB pages, so that under SyncAlways each append's flush
// wrote up to 2 MiB: with three followers, 1.3 MB an append of 4 KB, 15 GB
// in 20 seconds. They now read those files instead of mapping them.
func TestFollowersDoNotSetPageSize(t *testing.T) {
	appendsWithReadersWriteLittle(t, func(dir string, w *Writer) func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 3 {
			r, err := reader.Open(dir, reader.Options{Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.Close()
				for range r.All(ctx) {
				}
			}()
		}
		return func() { cancel(); wg.Wait() }
	})
}

// TestImagesOfLiveFilesDoNotSetPageSize: any reader may open the files
// after the active segment (verify and inspect of a live log do) through
// segment.OpenImage. Mapped in 2 MiB pages, such a mapping around the time
// the writer prepares the file made a SyncAlways writer write 0.86-1.07 MB
// an append of 16 KiB; OpenImage maps only files ending in a footer in
// 2 MiB pages.
func TestImagesOfLiveFilesDoNotSetPageSize(t *testing.T) {
	appendsWithReadersWriteLittle(t, func(dir string, w *Writer) func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Microsecond):
				}
				c := w.cur.Load()
				for seq := c.seq + 1; seq <= c.seq+3; seq++ {
					im, err := segment.OpenImage(filepath.Join(dir, segment.FileName(seq)))
					if err != nil {
						continue // not created yet
					}
					_ = segment.LoadLength(im.Data, segment.HeaderSize)
					_, _ = im.Footer()
					im.Close()
				}
			}
		}()
		return func() { close(stop); <-done }
	})
}

// appendsWithReadersWriteLittle opens a SyncAlways writer of 4 MiB
// segments, starts readers on it (start returns what stops them), and
// fails if 16 KiB appends from segment 2 to 7 write more than 256 KiB
// each to the disk: each append's pages and the file system's journal,
// and the seals, make tens of KiB; a 2 MiB page at either end of a
// segment makes ~1 MiB.
func appendsWithReadersWriteLittle(t *testing.T, start func(dir string, w *Writer) (stop func())) {
	t.Helper()
	dir := t.TempDir()
	w, err := Open(dir, Options{Sync: SyncAlways, SegmentSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer start(dir, w)()
	p := make([]byte, 16<<10)
	for w.cur.Load().seq < 2 { // past segment 1, which nobody looked at ahead
		if _, err := w.Append(p); err != nil {
			t.Fatal(err)
		}
	}
	writesPerAppend(t, dir, len(p), 256<<10, func() int64 {
		n := int64(0)
		for ; w.cur.Load().seq < 7; n++ {
			if _, err := w.Append(p); err != nil {
				t.Fatal(err)
			}
		}
		return n
	})
}
