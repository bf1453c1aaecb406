package main

import (
	"bufio"
	"bytes"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestAppendRecordSameAsPrint: what tail formats in bulk (appendRecord,
// for sealed segments) is byte for byte what it prints record by record
// (print, for the rest), in every output format.
func TestAppendRecordSameAsPrint(t *testing.T) {
	recs := []reader.Record{
		{Position: segment.Position{Seq: 1, Offset: 64}, Time: time.Unix(0, 1_700_000_000_123_456_789), Payload: []byte("plain")},
		{Position: segment.Position{Seq: 2, Offset: 4096}, Time: time.Unix(0, 5), Payload: []byte("quote\" tab\t nl\n \u2028")},
		{Position: segment.Position{Seq: 3, Offset: 72}, Time: time.Unix(-1, 0), Payload: []byte{0, 0xff, 0xfe}},
		{Position: segment.Position{Seq: 4, Offset: 80}, Time: time.Unix(0, 0), Payload: nil},
	}
	for _, f := range []tailFlags{
		{output: "raw", delim: "newline"},
		{output: "raw", delim: "nul"},
		{output: "raw", delim: "newline", frame: "u32be"},
		{output: "json", delim: "newline"},
	} {
		var printed bytes.Buffer
		w := bufio.NewWriter(&printed)
		p, err := newPrinter(w, f)
		if err != nil {
			t.Fatal(err)
		}
		var appended []byte
		for i := range recs {
			if err := p.print(&recs[i]); err != nil {
				t.Fatal(err)
			}
			appended = p.appendRecord(appended, recs[i].Position, recs[i].Time.UnixNano(), recs[i].Payload)
		}
		w.Flush()
		if !bytes.Equal(appended, printed.Bytes()) {
			t.Errorf("%+v: appendRecord gives %q, print %q", f, appended, printed.Bytes())
		}
	}
}
