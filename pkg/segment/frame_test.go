package segment

import (
	"bytes"
	"math"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	fx := buildFixture(true)
	for i, off := range fx.offs {
		f := DecodeFrame(fx.img, testSeq, off)
		want := int32(FrameHeaderSize + len(testPayloads[i]))
		if f.State != Committed || f.Err != nil {
			t.Fatalf("frame %d at %d: %v %v", i, off, f.State, f.Err)
		}
		if f.Offset != off || f.Length != want || f.Type != TypeData || f.Time != testTimes[i] ||
			f.Extent != Align(int64(want)) || f.CRC != FrameCRC(FrameSeed(testSeq), off, fx.img[off+8:off+int64(want)]) {
			t.Fatalf("frame %d decoded as %+v", i, f)
		}
		if !bytes.Equal(f.Payload, testPayloads[i]) || f.Payload == nil {
			t.Fatalf("frame %d payload %q, want %q", i, f.Payload, testPayloads[i])
		}
		if cap(f.Payload) > 0 && &f.Payload[:1][0] != &fx.img[off+FrameHeaderSize] {
			t.Fatal("payload does not alias the image")
		}
	}
	end := DecodeFrame(fx.img, testSeq, fx.end)
	if end.State != Committed || end.Type != TypeEnd || int64(end.Length) != RecordLimit(testSize)-fx.end ||
		end.Extent != RecordLimit(testSize)-fx.end || end.Payload != nil || end.Time != 1_700_000_000_000_001_000 {
		t.Fatalf("END decoded as %+v", end)
	}

	// PAD: header-only CRC; the bytes it covers are not checked.
	img := NewImage(testSeq, testSize, 0)
	for i := 200; i < 300; i++ {
		img[i] = 0x77
	}
	PutPad(img, testSeq, 192, 128)
	pad := DecodeFrame(img, testSeq, 192)
	if pad.State != Committed || pad.Type != TypePad || pad.Length != 128 || pad.Extent != 128 || pad.Payload != nil || pad.Time != 0 {
		t.Fatalf("PAD decoded as %+v", pad)
	}
	// A DATA frame ending exactly at DataLimit and the smallest END after it.
	n := int(DataLimit(testSize) - HeaderSize - FrameHeaderSize)
	if int64(n) != MaxPayload(testSize) {
		t.Fatal("MaxPayload")
	}
	img = NewImage(testSeq, testSize, 0)
	next := PutFrame(img, testSeq, HeaderSize, TypeData, 1, bytes.Repeat([]byte{1}, n))
	if next != DataLimit(testSize) {
		t.Fatal(next)
	}
	PutEnd(img, testSeq, next, 2)
	if f := DecodeFrame(img, testSeq, HeaderSize); f.State != Committed || len(f.Payload) != n {
		t.Fatalf("full frame: %v %v", f.State, f.Err)
	}
	if f := DecodeFrame(img, testSeq, next); f.State != Committed || f.Length != FrameHeaderSize || f.Type != TypeEnd {
		t.Fatalf("END at the data limit: %v %v", f.State, f.Err)
	}
}

func TestFrameStates(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	if f := DecodeFrame(img, testSeq, 128); f.State != Unwritten || f.Extent != 0 || f.Err != nil {
		t.Fatalf("zeros: %+v", f)
	}
	// A claim alone: the writer stored the negative length and nothing else.
	StoreLength(img, 128, -29)
	if f := DecodeFrame(img, testSeq, 128); f.State != Reserved || f.Extent != 32 || f.Length != -29 || f.Err != nil {
		t.Fatalf("claim: %+v", f)
	}
	if LoadLength(img, 128) != -29 {
		t.Fatal("LoadLength")
	}
	// Header and payload written, not committed: still reserved.
	PutFrame(img, testSeq, 128, TypeData, 1, []byte("hello"))
	StoreLength(img, 128, -29)
	if f := DecodeFrame(img, testSeq, 128); f.State != Reserved || f.Extent != 32 || f.Payload != nil {
		t.Fatalf("written, uncommitted: %+v", f)
	}
	StoreLength(img, 128, 29)
	if f := DecodeFrame(img, testSeq, 128); f.State != Committed || string(f.Payload) != "hello" {
		t.Fatalf("committed: %+v", f)
	}
	for s, name := range map[FrameState]string{Unwritten: "unwritten", Reserved: "reserved", Committed: "committed", Torn: "torn", 9: "invalid"} {
		if s.String() != name {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}

// Every way a frame slot can be damaged is reported as Torn, with the frame
// offset and a reason, and never as a committed frame.
func TestFrameDamageDetected(t *testing.T) {
	const seq = testSeq
	// Frame 3 (payload "delta-"x20) is at fx.offs[3]; most cases damage it.
	fx0 := buildFixture(true)
	off := fx0.offs[3]
	cases := []struct {
		name    string
		seq     uint64
		at      int64 // offset decoded (default off)
		corrupt func(img []byte)
		reason  string
	}{
		{name: "payload byte", corrupt: func(img []byte) { img[off+FrameHeaderSize+7] ^= 0x01 }, reason: "checksum mismatch"},
		{name: "last payload byte", corrupt: func(img []byte) { img[off+FrameHeaderSize+119] ^= 0x80 }, reason: "checksum mismatch"},
		{name: "time byte", corrupt: func(img []byte) { img[off+16] ^= 0x01 }, reason: "checksum mismatch"},
		{name: "crc byte", corrupt: func(img []byte) { img[off+6] ^= 0x10 }, reason: "checksum mismatch"},
		{name: "length shorter", corrupt: func(img []byte) { le.PutUint32(img[off:], 100) }, reason: "does not match the length field"},
		{name: "length copy", corrupt: func(img []byte) { img[off+12] ^= 0x01 }, reason: "does not match the length field"},
		{name: "type data to pad", corrupt: func(img []byte) { img[off+8] = TypePad }, reason: "checksum mismatch"},
		{name: "type data to end", corrupt: func(img []byte) { img[off+8] = TypeEnd }, reason: "does not reach the record limit"},
		{name: "wrong segment", seq: seq + 1, reason: "checksum mismatch"},
		{name: "copied to another offset", at: fx0.offs[4] + 8, corrupt: func(img []byte) {
			n := fx0.ext(3)
			copy(img[fx0.offs[4]+8:], img[off:off+n])
		}, reason: "checksum mismatch"},
		{name: "type zero", corrupt: func(img []byte) { img[off+8] = 0 }, reason: "invalid frame type 0x00"},
		{name: "type 3", corrupt: func(img []byte) { img[off+8] = 3 }, reason: "invalid frame type 0x03"},
		{name: "type ff", corrupt: func(img []byte) { img[off+8] = 0xff }, reason: "invalid frame type 0xff"},
		{name: "flags", corrupt: func(img []byte) { img[off+9] = 1 }, reason: "reserved header bytes"},
		{name: "reserved 10", corrupt: func(img []byte) { img[off+10] = 1 }, reason: "reserved header bytes"},
		{name: "reserved 11", corrupt: func(img []byte) { img[off+11] = 0x80 }, reason: "reserved header bytes"},
		{name: "length below header", corrupt: func(img []byte) { le.PutUint32(img[off:], 23) }, reason: "length 23 out of bounds"},
		{name: "length 1", corrupt: func(img []byte) { le.PutUint32(img[off:], 1) }, reason: "out of bounds"},
		{name: "length past record limit", corrupt: func(img []byte) {
			le.PutUint32(img[off:], uint32(RecordLimit(testSize)-off+1))
		}, reason: "out of bounds"},
		{name: "length max", corrupt: func(img []byte) { le.PutUint32(img[off:], math.MaxInt32) }, reason: "out of bounds"},
		{name: "reserved length past limit", corrupt: func(img []byte) {
			StoreLength(img, off, int32(-(RecordLimit(testSize) - off + 1)))
		}, reason: "reserved frame length"},
		{name: "reserved crossing the data limit", corrupt: func(img []byte) {
			StoreLength(img, off, int32(-(DataLimit(testSize) - off + 1)))
		}, reason: "reserved frame length"},
		{name: "reserved length min int32", corrupt: func(img []byte) { StoreLength(img, off, math.MinInt32) }, reason: "reserved frame length"},
		{name: "reserved length below header", corrupt: func(img []byte) { StoreLength(img, off, -16) }, reason: "reserved frame length -16"},
		{name: "unaligned offset", at: off + 4, reason: "out of the record area"},
		{name: "offset in header", at: 8, reason: "out of the record area"},
		{name: "offset negative", at: -8, reason: "out of the record area"},
		{name: "offset at record limit", at: RecordLimit(testSize), reason: "out of the record area"},
		{name: "offset past file", at: testSize + 1024, reason: "out of the record area"},
		{name: "offset max int", at: math.MaxInt64 - 7, reason: "out of the record area"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(fx0.img)
			if tc.corrupt != nil {
				tc.corrupt(img)
			}
			seq, at := tc.seq, tc.at
			if seq == 0 {
				seq = testSeq
			}
			if at == 0 {
				at = off
			}
			f := DecodeFrame(img, seq, at)
			if f.State != Torn {
				t.Fatalf("state %v, want torn (%+v)", f.State, f)
			}
			if f.Offset != at || f.Payload != nil {
				t.Fatalf("torn frame %+v", f)
			}
			wantCorrupt(t, f.Err, at, tc.reason)
		})
	}
}

// Frames that are well formed in isolation but break the layout rules.
func TestFrameLayoutRules(t *testing.T) {
	dl, rl := DataLimit(testSize), RecordLimit(testSize)
	cases := []struct {
		name   string
		build  func(img []byte) int64 // returns the offset to decode
		reason string
	}{
		{"data crossing the data limit", func(img []byte) int64 {
			o := dl - 24
			PutFrame(img, testSeq, o, TypeData, 0, make([]byte, 8))
			return o
		}, "crosses the data limit"},
		{"pad crossing the data limit", func(img []byte) int64 {
			PutPad(img, testSeq, dl-24, 32)
			return dl - 24
		}, "pad frame length"},
		{"pad unaligned length", func(img []byte) int64 {
			PutPad(img, testSeq, 1024, 36)
			return 1024
		}, "pad frame length 36"},
		{"end short of the record limit", func(img []byte) int64 {
			PutFrame(img, testSeq, 1024, TypeEnd, 0, nil)
			return 1024
		}, "does not reach the record limit"},
		{"end past the record limit", func(img []byte) int64 {
			o := rl - 32
			PutFrameHeader(img[o:], TypeEnd, 40, 0)
			PutFrameCRC(img[o:], FrameSeed(testSeq), o)
			StoreLength(img, o, 40)
			return o
		}, "out of bounds"},
		{"end after the data limit", func(img []byte) int64 {
			// 8 bytes past DataLimit there is no room for a frame header.
			o := dl + 8
			PutFrameHeader(img[o:], TypeEnd, 16, 0)
			PutFrameCRC(img[o:], FrameSeed(testSeq), o)
			StoreLength(img, o, 16)
			return o
		}, "out of the record area"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := NewImage(testSeq, testSize, 0)
			at := tc.build(img)
			f := DecodeFrame(img, testSeq, at)
			if f.State != Torn {
				t.Fatalf("state %v, want torn", f.State)
			}
			wantCorrupt(t, f.Err, at, tc.reason)
		})
	}
}

func TestFrameCRCDefinition(t *testing.T) {
	// seed = CRC32C(seq as 8 LE bytes); the CRC continues from
	// seed XOR offset over frame bytes 8..length (DATA).
	var sb []byte
	sb = le.AppendUint64(sb, 3)
	if got, want := FrameSeed(3), crc32c(sb); got != want {
		t.Fatalf("FrameSeed %08x, want %08x", got, want)
	}
	img := NewImage(3, testSize, 0)
	PutFrame(img, 3, 96, TypeData, 1234, []byte("hello"))
	var cov []byte
	cov = append(cov, TypeData, 0, 0, 0)
	cov = le.AppendUint32(cov, 29)
	cov = le.AppendUint64(cov, 1234)
	cov = append(cov, "hello"...)
	if !bytes.Equal(img[96+8:96+29], cov) {
		t.Fatalf("covered bytes % x, want % x", img[96+8:96+29], cov)
	}
	base := FrameCRC(FrameSeed(3), 96, cov)
	if want := crc32cFrom(FrameSeed(3)^96, cov); base != want {
		t.Fatalf("FrameCRC %08x, want %08x", base, want)
	}
	if le.Uint32(img[96+4:]) != base {
		t.Fatal("stored CRC differs from FrameCRC")
	}
	// Inputs that must change the CRC.
	flip := func(i int) []byte { c := bytes.Clone(cov); c[i] ^= 1; return c }
	for name, c := range map[string]uint32{
		"seq":     FrameCRC(FrameSeed(4), 96, cov),
		"offset":  FrameCRC(FrameSeed(3), 104, cov),
		"type":    FrameCRC(FrameSeed(3), 96, flip(0)),
		"length":  FrameCRC(FrameSeed(3), 96, flip(4)),
		"time":    FrameCRC(FrameSeed(3), 96, flip(8)),
		"payload": FrameCRC(FrameSeed(3), 96, flip(16)),
	} {
		if c == base {
			t.Errorf("%s does not change the CRC", name)
		}
	}
}

// crc32cFrom continues a CRC32C from a previous value, bit by bit: an
// independent implementation of crc32.Update's definition.
func crc32cFrom(prev uint32, b []byte) uint32 {
	c := ^prev
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x82F63B78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

func crc32c(b []byte) uint32 {
	var c uint32
	for _, x := range b {
		c = crcUpdateByte(c, x)
	}
	return c
}

// crcUpdateByte is a bitwise CRC32C, independent of hash/crc32, so the test
// pins the polynomial and not just the library call.
func crcUpdateByte(c uint32, x byte) uint32 {
	c = ^c
	c ^= uint32(x)
	for range 8 {
		if c&1 != 0 {
			c = c>>1 ^ 0x82F63B78
		} else {
			c >>= 1
		}
	}
	return ^c
}

// AppendPayload rebuilds the CRC a DATA frame stores from its offset,
// time and payload copy: equal for every frame as written, different
// when a payload byte, the time or the offset is not the frame's. With
// room in dst it allocates nothing (the reader copies every record
// through it).
func TestAppendPayload(t *testing.T) {
	fx := buildFixture(true)
	seed := FrameSeed(testSeq)
	dst := make([]byte, 3, 4096)
	for i, off := range fx.offs {
		f := DecodeFrame(fx.img, testSeq, off)
		got, ok := AppendPayload(dst, seed, off, f.Time, f.CRC, f.Payload)
		if !ok || !bytes.Equal(got[3:], testPayloads[i]) || &got[0] != &dst[0] {
			t.Fatalf("frame %d: %q, %v", i, got[3:], ok)
		}
		if _, ok := AppendPayload(dst, seed, off, f.Time+1, f.CRC, f.Payload); ok {
			t.Errorf("frame %d matches with another time", i)
		}
		if _, ok := AppendPayload(dst, seed, off+Alignment, f.Time, f.CRC, f.Payload); ok {
			t.Errorf("frame %d matches at another offset", i)
		}
		if len(f.Payload) > 0 {
			p := bytes.Clone(f.Payload)
			p[len(p)/2] ^= 1
			if _, ok := AppendPayload(dst, seed, off, f.Time, f.CRC, p); ok {
				t.Errorf("frame %d matches with a payload byte changed", i)
			}
		}
	}
	f := DecodeFrame(fx.img, testSeq, fx.offs[3])
	if n := testing.AllocsPerRun(100, func() { AppendPayload(dst, seed, f.Offset, f.Time, f.CRC, f.Payload) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}
