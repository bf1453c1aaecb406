package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A record's payload is in its segment's mapping; tail prints from a copy
// made under a fault guard. Here the file is truncated after the record
// was handed out: the copy is an error naming the segment and the file
// offset that has no data, where the print killed tail with SIGBUS.
func TestPayloadOfTruncatedSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), segment.FileName(7))
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 64<<10), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := segment.MapFile(f, 64<<10, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer segment.Unmap(m)
	frame := int64(40 << 10)
	rec := reader.Record{Position: segment.Position{Seq: 7, Offset: frame}, Payload: m[frame+segment.FrameHeaderSize : frame+segment.FrameHeaderSize+100]}

	buf, err := payloadCopy(nil, &rec)
	if err != nil || string(rec.Payload) != strings.Repeat("x", 100) || &rec.Payload[0] != &buf[0] {
		t.Fatalf("intact payload: %v, %q", err, rec.Payload)
	}

	rec.Payload = m[frame+segment.FrameHeaderSize : frame+segment.FrameHeaderSize+100]
	if err := os.Truncate(path, 32<<10); err != nil {
		t.Fatal(err)
	}
	_, err = payloadCopy(buf, &rec)
	want := "segment 7 changed while it was read (truncated?): no data at offset 40984"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("truncated: %v, want %q…", err, want)
	}
}
