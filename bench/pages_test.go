package main

import (
	"os"
	"strings"
	"testing"
)

// TestProbePages: every cost is measured (a page cannot be stored to, or
// written, in no time at all), the probe leaves nothing behind, and the
// row names each figure; a failure is reported in the row, not dropped.
func TestProbePages(t *testing.T) {
	dir := t.TempDir()
	pc := probePages(dir, 4<<20, 3)
	if pc.Err != nil {
		t.Skipf("this file system cannot be probed (fallocate or mmap refused): %v", pc.Err)
	}
	if pc.Write <= 0 || pc.Populate <= 0 || pc.FirstStore <= 0 || pc.Again <= 0 || pc.HugePopulate <= 0 || pc.HugeFirstStore <= 0 {
		t.Fatalf("costs %+v: each must be positive", pc)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the probe left %d files in %s", len(ents), dir)
	}
	row := pc.markdown()
	for _, want := range []string{"median of 3 rounds of 4.0 MiB", "write(2)", "MADV_POPULATE_WRITE", "first store", "second store", "in 2 MiB pages"} {
		if !strings.Contains(row, want) {
			t.Errorf("row %q lacks %q", row, want)
		}
	}
	bad := probePages(dir+"/missing", 4<<20, 1)
	if bad.Err == nil || !strings.Contains(bad.markdown(), "not measured") {
		t.Fatalf("probe of a missing directory: %+v -> %q", bad, bad.markdown())
	}
}
