package verify

import (
	"runtime"
	"testing"
)

// Verify's memory must not grow with the number of segments it checks.
// What it allocates for each segment is garbage at once, but that garbage
// still raised its peak memory with the log's length until the first
// collection: the frame walk's event buffer, 25 KiB a segment, was most
// of it, and is reused now. What is left a segment is its report and the
// file's open and stat.
func TestVerifyAllocatesLittlePerSegment(t *testing.T) {
	const segments = 64
	l := newTestLog(t)
	for range segments {
		l.sealed(20)
	}
	mustDir(t, l.dir, Options{Workers: 2}) // the pools and the scheduler warmed
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep := mustDir(t, l.dir, Options{Workers: 2})
	runtime.ReadMemStats(&after)
	if len(rep.Segments) != segments || len(rep.Findings) != 0 {
		t.Fatalf("report:\n%s", summary(rep))
	}
	// About 7 KiB a segment now (33 KiB before); under the race
	// detector, which makes sync.Pool drop a quarter of what it is given,
	// about 15 KiB. The event buffer alone is 25 KiB.
	if per := (after.TotalAlloc - before.TotalAlloc) / segments; per > 20<<10 {
		t.Errorf("verify allocated %d bytes a segment; want at most %d", per, 20<<10)
	}
}
