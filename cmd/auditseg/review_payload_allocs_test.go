package main

import (
	"bytes"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// Review: payloadCopy runs for every record tail prints in order (-f, -n N,
// --from, --since). It allocates on every call: `var mf *MappingFault`,
// whose address goes to errors.As, is moved to the heap even when Guard
// returns nil (go build -gcflags=-m: "moved to heap: mf"). With buf reused,
// the copy itself should cost no allocation.
func TestReviewPayloadCopyAllocates(t *testing.T) {
	rec := reader.Record{Payload: bytes.Repeat([]byte("x"), 100)}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		r := rec
		buf, _ = payloadCopy(buf, &r)
	})
	if allocs != 0 {
		t.Errorf("payloadCopy: %v allocations per record, want 0", allocs)
	}
}
