package main

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// refFrame is the framing of a whole input at once, the plain way: the
// records before the first bad one, and whether there is one (a record
// over max, a truncated prefix or record).
func refFrame(in []byte, delim string, max int64) (recs [][]byte, bad bool) {
	if delim == "" { // u32be
		for len(in) > 0 {
			if len(in) < 4 {
				return recs, true
			}
			n := int64(binary.BigEndian.Uint32(in))
			if n > max || int64(len(in)-4) < n {
				return recs, true
			}
			recs, in = append(recs, in[4:4+n]), in[4+n:]
		}
		return recs, false
	}
	d := byte('\n')
	if delim == "nul" {
		d = 0
	}
	for len(in) > 0 {
		rec, rest, found := bytes.Cut(in, []byte{d})
		if int64(len(rec)) > max {
			return recs, true
		}
		recs = append(recs, rec)
		if !found {
			break
		}
		in = rest
	}
	return recs, false
}

// FuzzFramer feeds arbitrary input to the framer in blocks of arbitrary
// sizes, through one buffer overwritten after every block as the block
// reader recycles its buffers, and compares the records with refFrame.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("a\n\nbc\nlast"), uint8(0), uint16(8), []byte{1, 3})
	f.Add([]byte("a\x00\x00bc\x00"), uint8(1), uint16(2), []byte{2})
	f.Add([]byte("\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x05xy"), uint8(2), uint16(8), []byte{5, 1, 1})
	f.Add([]byte("\x00\x00\x01\x00abc"), uint8(2), uint16(8), []byte{})
	f.Add(bytes.Repeat([]byte("0123456789abcdef\n"), 20), uint8(0), uint16(16), []byte{7, 0, 200, 3})
	f.Fuzz(func(t *testing.T, in []byte, mode uint8, maxSeed uint16, cuts []byte) {
		max := 1 + int64(maxSeed%512)
		fl := writeFlags{delim: []string{"newline", "nul", ""}[mode%3]}
		if fl.delim == "" {
			fl.framing = "u32be"
		}
		split, err := newSplitter(fl, max, segment.MinSegmentSize)
		if err != nil {
			t.Fatal(err)
		}
		fr := newFramer(split, max, segment.MinSegmentSize, recordNeed(fl, max))
		var got [][]byte
		emit := func(rec []byte, n int) error {
			if int64(len(rec)) > max {
				t.Fatalf("the framer handed on a record of %d bytes, over the limit of %d", len(rec), max)
			}
			got = append(got, bytes.Clone(rec))
			return nil
		}
		buf := make([]byte, 0, 256)
		rest := in
		var ferr error
		for i := 0; ferr == nil; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(n, int(cuts[i])%97+1)
			}
			// An odd number of cuts ends with an empty EOF block, as a
			// read returning 0 bytes at the end does.
			eof := n == len(rest) && (len(cuts)%2 == 0 || n == 0)
			buf = append(buf[:0], rest[:n]...)
			ferr = fr.feed(buf, eof, emit)
			for k := range buf {
				buf[k] = 0xA5 // recycled: the framer must not keep it
			}
			rest = rest[n:]
			if eof {
				break
			}
		}
		want, bad := refFrame(in, fl.delim, max)
		if (ferr != nil) != bad {
			t.Fatalf("error %v, want one: %v (%s, max %d)", ferr, bad, fl.delim+fl.framing, max)
		}
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
			}
		}
		if ferr == nil && (fr.off != int64(len(in)) || fr.pending() != 0) {
			t.Fatalf("consumed %d of %d bytes, %d pending", fr.off, len(in), fr.pending())
		}
	})
}

// A record that spans blocks larger than the piece carry grows by (64
// KiB), ending in the last block: it must come out whole, in every framing.
func TestFramerLongRecordAcrossBlocks(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789"), 30<<10) // 300 KiB
	for _, fl := range []writeFlags{{delim: "newline"}, {delim: "nul"}, {framing: "u32be"}} {
		var in []byte
		for i := range 3 {
			rec := long[:len(long)-i*1000]
			if fl.framing != "" {
				in = binary.BigEndian.AppendUint32(in, uint32(len(rec)))
				in = append(in, rec...)
			} else {
				in = append(in, rec...)
				if i < 2 { // the last one ends at EOF, undelimited
					in = append(in, map[string]byte{"newline": '\n', "nul": 0}[fl.delim])
				}
			}
		}
		const max = 1 << 20
		split, err := newSplitter(fl, max, segment.MinSegmentSize)
		if err != nil {
			t.Fatal(err)
		}
		fr := newFramer(split, max, segment.MinSegmentSize, recordNeed(fl, max))
		var got [][]byte
		emit := func(rec []byte, n int) error { got = append(got, bytes.Clone(rec)); return nil }
		for off, bs := 0, 150<<10; off < len(in); off += bs {
			end := min(off+bs, len(in))
			if err := fr.feed(in[off:end], end == len(in), emit); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 3 {
			t.Fatalf("%s%s: %d records", fl.delim, fl.framing, len(got))
		}
		for i, r := range got {
			if !bytes.Equal(r, long[:len(long)-i*1000]) {
				t.Fatalf("%s%s: record %d has %d bytes", fl.delim, fl.framing, i, len(r))
			}
		}
	}
}
