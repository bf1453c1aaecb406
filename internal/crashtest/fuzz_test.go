package crashtest

import (
	"bytes"
	"testing"
)

// The suite's own parsers read what a child process wrote; they must
// reject anything else cleanly, never panic, and round-trip what they
// accept.

func FuzzParseRecord(f *testing.F) {
	for _, id := range []RecordID{{}, {Run: 1, G: 7, I: 42}, {Run: ^uint32(0), I: 1 << 40}} {
		f.Add(AppendRecord(nil, id))
	}
	f.Add([]byte("CT"))
	f.Fuzz(func(t *testing.T, p []byte) {
		id, err := ParseRecord(p)
		if err != nil {
			return
		}
		if q := AppendRecord(nil, id); !bytes.Equal(p, q) {
			t.Fatalf("accepted %x as %v, which encodes as %x", p, id, q)
		}
	})
}

func FuzzParseKillPoint(f *testing.F) {
	for _, s := range KillPoints {
		f.Add(s)
	}
	f.Add("open-rotate:1")
	f.Add("seal+:0")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKillPoint(s)
		if err != nil {
			return
		}
		k2, err := ParseKillPoint(k.String())
		if err != nil || k2 != k {
			t.Fatalf("%q parsed as %+v, printed %q, reparsed %+v (%v)", s, k, k.String(), k2, err)
		}
	})
}

func FuzzReadMsg(f *testing.F) {
	m := Msg{Kind: MsgAck, G: 3, I: 99}
	m.Pos.Seq, m.Pos.Offset = 7, 4096
	b := m.Encode()
	f.Add(b[:])
	f.Add(b[:10])
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := ReadMsg(bytes.NewReader(p))
		if err != nil {
			if len(p) >= MsgSize {
				t.Fatalf("%d bytes, yet %v", len(p), err)
			}
			return
		}
		// Bytes 1..3 are padding; everything else round-trips.
		if e := m.Encode(); len(p) < MsgSize || e[0] != p[0] || !bytes.Equal(e[4:], p[4:MsgSize]) {
			t.Fatalf("decoded %+v from %x", m, p)
		}
	})
}
