package testfs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// MappedRSS returns the resident bytes of the mapping that starts at m,
// from /proc/self/smaps; without smaps the test is skipped.
func MappedRSS(t testing.TB, m []byte) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&m[0])))
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 5 && strings.Count(f[0], "-") == 1 { // a mapping's first line
			in = strings.HasPrefix(line, start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}

// PeakRSSFrom resets the process's peak resident set (clear_refs 5) and
// returns a function that reports how far it rose above the resident set
// at the reset: what the code run in between held at its peak, file
// pages mapped included. Without the files the test is skipped.
func PeakRSSFrom(t testing.TB) func() int64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident set: %v", err)
	}
	before := statusKB(t, "VmRSS:")
	return func() int64 { return (statusKB(t, "VmHWM:") - before) << 10 }
}

// statusKB returns the field of /proc/self/status, in KiB.
func statusKB(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// PeakFileRSSFrom is PeakRSSFrom less what the process's anonymous memory
// (the Go heap, the race detector's shadow) grew by in between: a lower
// bound on how far the file pages the code mapped rose at their peak,
// which heap noise of a few MiB does not blur. It holds if the anonymous
// memory only grows meanwhile: the caller stops the collector and gives
// the heap's free pages back first (debug.SetGCPercent(-1),
// debug.FreeOSMemory), else the runtime returns pages while the peak is
// taken.
func PeakFileRSSFrom(t testing.TB) func() int64 {
	t.Helper()
	peak := PeakRSSFrom(t)
	anon := statusKB(t, "RssAnon:")
	return func() int64 { return peak() - (statusKB(t, "RssAnon:")-anon)<<10 }
}
