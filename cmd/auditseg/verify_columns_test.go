package main

import (
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/verify"
)

// TestVerifyTextColumnsAligned: the size column starts at the same place
// on every segment line, whatever the record counts. "1 record" and
// "1234567 records" were printed with %8s, which pads only what is
// shorter than 8: a log with 1 record in one segment and 20 in another
// had its sizes one column apart, and more with larger counts.
func TestVerifyTextColumnsAligned(t *testing.T) {
	rep := &verify.Report{}
	for i, n := range []uint64{20, 1, 0, 1234567, 3} {
		rep.Segments = append(rep.Segments, verify.SegmentReport{
			Path: "log/" + strings.Repeat("x", i), State: verify.State("sealed"), Status: verify.Pass,
			Records: n, Bytes: 64 << 20,
		})
	}
	var b strings.Builder
	if err := writeVerifyText(&b, rep, false, false); err != nil {
		t.Fatal(err)
	}
	col := -1
	for _, line := range strings.Split(b.String(), "\n")[:len(rep.Segments)] {
		at := strings.Index(line, "64.0 MiB")
		if col < 0 {
			col = at
		}
		if at != col {
			t.Fatalf("size at column %d, %d on the first line:\n%s", at, col, b.String())
		}
	}
}
