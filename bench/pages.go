package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// pageCosts is what this machine charges, per 4 KiB page, for the two ways
// of putting fresh log bytes into the page cache. The writer stores into
// a mapped, pre-populated segment; the bufio and write(2) peers and `cat`
// copy with write(2) through the kernel's own mapping of memory. On a
// machine where a new user mapping is expensive (a guest under shadow
// paging, such as PVM) the first kind costs several times the second, and
// that, not the append path, sets the writer's rate: the figures explain
// the library and `write` ratios, so every run measures them.
type pageCosts struct {
	// Write is write(2) of zeros into new page-cache pages of a file.
	Write time.Duration
	// Populate is MADV_POPULATE_WRITE of a new shared mapping of a
	// fallocated file, as the writer prepares a segment.
	Populate time.Duration
	// FirstStore is one store to each page after the populate (the
	// writer's prefault does it, in the background); Again is a second.
	FirstStore, Again time.Duration
	// HugePopulate and HugeFirstStore are the same for a mapping advised
	// MADV_HUGEPAGE, as the writer maps a segment where its flushes allow
	// (pkg/writer/pages.go): the page cache then holds 2 MiB folios, each
	// mapped by one entry. Still per 4 KiB.
	HugePopulate, HugeFirstStore time.Duration
	Size                         int64 // bytes per probe file
	Rounds                       int
	Err                          error
}

// probePages measures pageCosts on size-byte files in dir, the median of
// rounds rounds. Each round first writes and removes a file, so the
// mapped file is populated from memory freed a moment before: warm, as
// every figure in the doc is.
func probePages(dir string, size int64, rounds int) pageCosts {
	pc := pageCosts{Size: size, Rounds: rounds}
	var w, p, f, a, hp, hf []time.Duration
	for range rounds {
		r, err := probePagesOnce(dir, size)
		if err != nil {
			pc.Err = err
			return pc
		}
		w, p, f, a = append(w, r.Write), append(p, r.Populate), append(f, r.FirstStore), append(a, r.Again)
		hp, hf = append(hp, r.HugePopulate), append(hf, r.HugeFirstStore)
	}
	pc.Write, pc.Populate, pc.FirstStore, pc.Again = medianDur(w), medianDur(p), medianDur(f), medianDur(a)
	pc.HugePopulate, pc.HugeFirstStore = medianDur(hp), medianDur(hf)
	return pc
}

func medianDur(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// probePagesOnce returns the per-page costs of one round.
func probePagesOnce(dir string, size int64) (pageCosts, error) {
	const page = 4096
	pages := time.Duration(size / page)
	var pc pageCosts
	zeros := make([]byte, 1<<20)
	wpath := filepath.Join(dir, "probe-write")
	wf, err := os.Create(wpath)
	if err != nil {
		return pc, err
	}
	defer os.Remove(wpath)
	t0 := time.Now()
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := wf.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			wf.Close()
			return pc, fmt.Errorf("page probe: %w", err)
		}
	}
	pc.Write = time.Since(t0) / pages
	wf.Close()
	os.Remove(wpath) // its pages are what the mapping below gets

	for _, huge := range []bool{false, true} {
		populate, stores, err := probeMapping(dir, size, huge)
		if err != nil {
			return pc, err
		}
		if huge {
			pc.HugePopulate, pc.HugeFirstStore = populate/pages, stores[0]/pages
		} else {
			pc.Populate, pc.FirstStore, pc.Again = populate/pages, stores[0]/pages, stores[1]/pages
		}
	}
	return pc, nil
}

// probeMapping maps a new fallocated file of size bytes in dir as the
// writer maps a segment (advised MADV_HUGEPAGE if huge) and returns how
// long MADV_POPULATE_WRITE took and two passes of one store per page.
func probeMapping(dir string, size int64, huge bool) (populate time.Duration, stores [2]time.Duration, err error) {
	const page = 4096
	path := filepath.Join(dir, "probe-map")
	f, err := os.Create(path)
	if err != nil {
		return 0, stores, err
	}
	defer os.Remove(path)
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		return 0, stores, fmt.Errorf("page probe: fallocate: %w", err)
	}
	// Mapped where the writer's segments are, 2 MiB-aligned (huge pages
	// need it): through segment.MapFile itself.
	m, err := segment.MapFile(f, size, true, huge)
	if err != nil {
		return 0, stores, fmt.Errorf("page probe: %w", err)
	}
	defer segment.Unmap(m)
	t0 := time.Now()
	if err := unix.Madvise(m, unix.MADV_POPULATE_WRITE); err != nil {
		return 0, stores, fmt.Errorf("page probe: MADV_POPULATE_WRITE: %w", err)
	}
	populate = time.Since(t0)
	for pass := range stores {
		t0 = time.Now()
		for i := 0; i < len(m); i += page {
			m[i] = byte(pass)
		}
		stores[pass] = time.Since(t0)
	}
	return populate, stores, nil
}

// markdown is the Machine table's row for the probe.
func (pc pageCosts) markdown() string {
	if pc.Err != nil {
		return fmt.Sprintf("| page costs | not measured: %v |\n", pc.Err)
	}
	return fmt.Sprintf("| page costs (per 4 KiB; median of %d rounds of %s, warm) | write(2) into new page-cache pages %s; a new mapping of a fallocated file in 4 KiB pages: MADV_POPULATE_WRITE %s, then the first store to each page %s, a second store %s; in 2 MiB pages (MADV_HUGEPAGE): populate %s, first store %s |\n",
		pc.Rounds, fmtBytes(float64(pc.Size)), fmtDurShort(pc.Write), fmtDurShort(pc.Populate), fmtDurShort(pc.FirstStore), fmtDurShort(pc.Again),
		fmtDurShort(pc.HugePopulate), fmtDurShort(pc.HugeFirstStore))
}

// fmtDurShort prints a per-page cost: nanoseconds below a microsecond.
func fmtDurShort(d time.Duration) string {
	if d < time.Microsecond {
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	}
	return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1e3)
}
