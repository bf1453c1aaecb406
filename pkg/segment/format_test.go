package segment

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"lukechampine.com/blake3"
)

// The wire constants are the format: this test fails if any of them is
// changed, which must never happen without a new Version.
func TestWireConstants(t *testing.T) {
	if Magic != "AUDITSEG" || FooterMagic != "AUDSEAL1" || Version != 1 {
		t.Fatal("magic or version changed")
	}
	if HeaderSize != 64 || FrameHeaderSize != 24 || Alignment != 8 || FooterSize != 128 || DigestSize != 32 {
		t.Fatal("layout sizes changed")
	}
	if TypeData != 1 || TypePad != 2 || TypeEnd != 0x19 || FlagRecovered != 1 {
		t.Fatal("frame types or flags changed")
	}
	// A fixed header image: catches any change of field order or endianness.
	var b [HeaderSize]byte
	Header{Seq: 0x0102030405060708, Size: 1 << 16, Created: -2}.Encode(b[:])
	want := []byte{
		'A', 'U', 'D', 'I', 'T', 'S', 'E', 'G',
		1, 0, 24, 0, 8, 0, 128, 0,
		8, 7, 6, 5, 4, 3, 2, 1,
		0, 0, 1, 0, 0, 0, 0, 0,
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	}
	if !bytes.Equal(b[:40], want) {
		t.Fatalf("header bytes\n got % x\nwant % x", b[:40], want)
	}
	if !isZero(b[40:60]) {
		t.Fatal("header reserved bytes not zero")
	}
	if got := le.Uint32(b[60:]); got != crc32.Checksum(b[:60], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatalf("header CRC %08x is not CRC32C of bytes 0..60", got)
	}
}

func TestLimits(t *testing.T) {
	const size = 1 << 20
	if RecordLimit(size) != size-128 || DataLimit(size) != size-152 {
		t.Fatal("record/data limit")
	}
	if MaxPayload(size) != size-152-64-24 {
		t.Fatal("max payload")
	}
	if DefaultMaxRecord(DefaultSegmentSize) != DefaultSegmentSize/8-24 {
		t.Fatal("default max record is not an eighth of the segment")
	}
	for n, want := range map[int64]int64{0: 0, 1: 8, 7: 8, 8: 8, 9: 16, 24: 24, 29: 32} {
		if Align(n) != want {
			t.Errorf("Align(%d) = %d, want %d", n, Align(n), want)
		}
	}
	if FrameSize(0) != 24 || FrameSize(5) != 32 || FrameSize(40) != 64 {
		t.Fatal("FrameSize")
	}
	for _, s := range []int64{MinSegmentSize, DefaultSegmentSize, MaxSegmentSize, MinSegmentSize + 8} {
		if err := ValidSize(s); err != nil {
			t.Errorf("ValidSize(%d): %v", s, err)
		}
	}
	for _, s := range []int64{0, -8, MinSegmentSize - 8, MaxSegmentSize + 8, MinSegmentSize + 4, math.MaxInt64} {
		if ValidSize(s) == nil {
			t.Errorf("ValidSize(%d) accepted", s)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Seq: 1, Size: MinSegmentSize, Created: 1_700_000_000_123_456_789},
		{Seq: math.MaxUint64, Size: MaxSegmentSize, Created: math.MinInt64},
		{Seq: 0, Size: DefaultSegmentSize, Created: 0},
	} {
		b := make([]byte, HeaderSize+10)
		for i := range b {
			b[i] = 0xEE // Encode must clear what it does not set
		}
		h.Encode(b)
		if b[HeaderSize] != 0xEE {
			t.Fatal("Encode wrote past the header")
		}
		got, err := DecodeHeader(b)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if got != h {
			t.Fatalf("round trip: got %+v, want %+v", got, h)
		}
	}
}

func TestHeaderDamageDetected(t *testing.T) {
	good := func() []byte {
		b := make([]byte, HeaderSize)
		Header{Seq: 9, Size: MinSegmentSize, Created: 5}.Encode(b)
		return b
	}
	// reCRC makes a deliberately wrong field reach its own check.
	reCRC := func(b []byte) { le.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli)) }
	cases := []struct {
		name    string
		corrupt func(b []byte) []byte
		off     int64
		reason  string
	}{
		{"short", func(b []byte) []byte { return b[:HeaderSize-1] }, 0, "too short"},
		{"empty", func(b []byte) []byte { return nil }, 0, "too short"},
		{"magic", func(b []byte) []byte { b[0] = 'a'; reCRC(b); return b }, 0, "bad magic"},
		{"crc field", func(b []byte) []byte { b[61] ^= 1; return b }, 60, "header checksum mismatch"},
		{"seq byte", func(b []byte) []byte { b[16] ^= 0x80; return b }, 60, "header checksum mismatch"},
		{"size byte", func(b []byte) []byte { b[25] ^= 1; return b }, 60, "header checksum mismatch"},
		{"created byte", func(b []byte) []byte { b[39] ^= 1; return b }, 60, "header checksum mismatch"},
		{"version", func(b []byte) []byte { le.PutUint16(b[8:], 2); reCRC(b); return b }, 8, "unsupported format version 2"},
		{"version no crc", func(b []byte) []byte { le.PutUint16(b[8:], 2); return b }, 60, "checksum"},
		{"frame header size", func(b []byte) []byte { le.PutUint16(b[10:], 32); reCRC(b); return b }, 10, "layout constants"},
		{"alignment", func(b []byte) []byte { le.PutUint16(b[12:], 16); reCRC(b); return b }, 10, "layout constants"},
		{"footer size", func(b []byte) []byte { le.PutUint16(b[14:], 64); reCRC(b); return b }, 10, "layout constants"},
		{"size too small", func(b []byte) []byte { le.PutUint64(b[24:], MinSegmentSize-8); reCRC(b); return b }, 24, "out of range"},
		{"size too large", func(b []byte) []byte { le.PutUint64(b[24:], MaxSegmentSize+8); reCRC(b); return b }, 24, "out of range"},
		{"size negative", func(b []byte) []byte { le.PutUint64(b[24:], math.MaxUint64); reCRC(b); return b }, 24, "out of range"},
		{"size unaligned", func(b []byte) []byte { le.PutUint64(b[24:], MinSegmentSize+4); reCRC(b); return b }, 24, "not a multiple"},
		{"reserved byte", func(b []byte) []byte { b[45] = 1; reCRC(b); return b }, 40, "reserved"},
		{"reserved byte no crc", func(b []byte) []byte { b[59] = 1; return b }, 60, "checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHeader(tc.corrupt(good()))
			wantCorrupt(t, err, tc.off, tc.reason)
		})
	}
}

func testFooter() Footer {
	f := Footer{
		Seq: testSeq, Records: 12345, EndOffset: 4096, MinTime: -5, MaxTime: math.MaxInt64,
		SealedAt: 1_700_000_000_000_000_000, Flags: FlagRecovered | 0x80000000,
	}
	for i := range f.PrevDigest {
		f.PrevDigest[i] = byte(i + 1)
		f.Digest[i] = byte(0xff - i)
	}
	return f
}

func TestFooterRoundTrip(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	h, _ := DecodeHeader(img)
	if _, err := DecodeFooter(img, h); !errors.Is(err, ErrNoFooter) {
		t.Fatalf("zero footer: %v, want ErrNoFooter", err)
	}
	for _, want := range []Footer{testFooter(), {Seq: testSeq, EndOffset: HeaderSize}, {Seq: testSeq, EndOffset: DataLimit(testSize)}} {
		want.Encode(img[testSize-FooterSize:])
		got, err := DecodeFooter(img, h)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	// The field offsets documented in format.go.
	f := testFooter()
	b := make([]byte, FooterSize)
	f.Encode(b)
	if string(b[:8]) != FooterMagic || le.Uint64(b[8:]) != f.Seq || le.Uint64(b[16:]) != f.Records ||
		int64(le.Uint64(b[24:])) != f.EndOffset || int64(le.Uint64(b[32:])) != f.MinTime ||
		int64(le.Uint64(b[40:])) != f.MaxTime || int64(le.Uint64(b[48:])) != f.SealedAt ||
		le.Uint32(b[56:]) != f.Flags || !bytes.Equal(b[60:92], f.PrevDigest[:]) ||
		!bytes.Equal(b[92:124], f.Digest[:]) || le.Uint32(b[124:]) != crc32.Checksum(b[:124], castagnoli) {
		t.Fatalf("footer layout differs from the documented table: % x", b)
	}
}

func TestFooterDamageDetected(t *testing.T) {
	at := testSize - FooterSize
	reCRC := func(img []byte) {
		b := img[at:]
		le.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli))
	}
	cases := []struct {
		name    string
		corrupt func(img []byte) []byte
		off     int64
		reason  string
	}{
		{"magic", func(img []byte) []byte { img[at+3] = 'x'; reCRC(img); return img }, at, "bad footer magic"},
		{"crc", func(img []byte) []byte { img[at+125] ^= 1; return img }, at + 124, "footer checksum mismatch"},
		{"records byte", func(img []byte) []byte { img[at+16] ^= 1; return img }, at + 124, "footer checksum mismatch"},
		{"digest byte", func(img []byte) []byte { img[at+100] ^= 1; return img }, at + 124, "footer checksum mismatch"},
		{"seq", func(img []byte) []byte { le.PutUint64(img[at+8:], testSeq+1); reCRC(img); return img }, at + 8, "does not match header sequence"},
		{"end before header", func(img []byte) []byte { le.PutUint64(img[at+24:], 56); reCRC(img); return img }, at + 24, "end offset 56 out of range"},
		{"end past data limit", func(img []byte) []byte {
			le.PutUint64(img[at+24:], uint64(DataLimit(testSize)+8))
			reCRC(img)
			return img
		}, at + 24, "out of range"},
		{"end unaligned", func(img []byte) []byte { le.PutUint64(img[at+24:], 4100); reCRC(img); return img }, at + 24, "out of range"},
		{"end negative", func(img []byte) []byte { le.PutUint64(img[at+24:], math.MaxUint64); reCRC(img); return img }, at + 24, "out of range"},
		{"one nonzero byte in the magic", func(img []byte) []byte { clear(img[at:]); img[at+7] = 1; return img }, at, "bad footer magic"},
		{"image short", func(img []byte) []byte { return img[:testSize-8] }, testSize - 8, "header says"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := NewImage(testSeq, testSize, 0)
			testFooter().Encode(img[at:])
			h, _ := DecodeHeader(img)
			_, err := DecodeFooter(tc.corrupt(img), h)
			wantCorrupt(t, err, tc.off, tc.reason)
		})
	}
	// A header that did not come from DecodeHeader must not crash it.
	for _, h := range []Header{{Size: 10}, {Size: 0}, {Size: -1}, {Size: 200}} {
		b := make([]byte, max(h.Size, 0))
		if _, err := DecodeFooter(b, h); err == nil {
			t.Errorf("DecodeFooter accepted size %d", h.Size)
		}
	}
}

func TestCorruptErrorText(t *testing.T) {
	err := corrupt(96, "frame checksum mismatch")
	if err.Error() != "segment: offset 96: frame checksum mismatch" {
		t.Fatal(err)
	}
	named := WithPath(err, "/log/00000000000000000007.seg")
	if named.Error() != "/log/00000000000000000007.seg: offset 96: frame checksum mismatch" || !errors.Is(named, ErrCorrupt) {
		t.Fatal(named)
	}
	if err.Error() != "segment: offset 96: frame checksum mismatch" {
		t.Fatal("WithPath modified its argument")
	}
	if WithPath(named, "/other") != named {
		t.Fatal("WithPath replaced an existing path")
	}
	plain := errors.New("x")
	if WithPath(plain, "/p") != plain || WithPath(nil, "/p") != nil {
		t.Fatal("WithPath changed a non-corrupt error")
	}
}

func TestDigestDefinition(t *testing.T) {
	img, f := sealedFixture(t, [DigestSize]byte{1, 2, 3})
	// One-shot over the concatenation, where Digest streams it.
	msg := append([]byte{1, 2, 3}, make([]byte, DigestSize-3)...)
	msg = append(msg, img[:f.EndOffset+FrameHeaderSize]...)
	if want := blake3.Sum256(msg); !bytes.Equal(want[:], f.Digest[:]) {
		t.Fatal("digest is not BLAKE3-256(prev | file[0:end+24])")
	}
}

// The writer hashes the committed prefix of a segment in steps of whatever
// size the appenders happened to commit; every split must give Digest.
func TestDigestStreamSplits(t *testing.T) {
	prev := [DigestSize]byte{9, 8, 7}
	img, f := sealedFixture(t, prev)
	want := Digest(prev, img, f.EndOffset)
	end := f.EndOffset + FrameHeaderSize
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		d := NewDigestStream(prev)
		for at := int64(0); ; {
			if d.Hashed() != at {
				t.Fatalf("trial %d: Hashed() = %d after adding up to %d", trial, d.Hashed(), at)
			}
			if trial == 0 || at >= end {
				break
			}
			at = min(end, at+1+rng.Int64N(max(1, end/4)))
			d.Add(img, at)
			d.Add(img, at-1) // going back is a no-op
		}
		if d.Prev() != prev {
			t.Fatal("Prev() is not the digest the stream started from")
		}
		if got := d.Sum(img, f.EndOffset); got != want {
			t.Fatalf("trial %d: streamed digest differs from Digest", trial)
		}
	}
}

// TestFooterWithoutMagicIsNotSealed covers a seal stopped part way: the
// sealer stores the magic last, so whichever of the other bytes a kill
// (or a reader looking meanwhile) finds stored, the segment reads as not
// sealed, which recovery seals, never as a damaged footer.
func TestFooterWithoutMagicIsNotSealed(t *testing.T) {
	var full [FooterSize]byte
	testFooter().Encode(full[:])
	h := Header{Seq: testSeq, Size: testSize}
	at := testSize - FooterSize
	check := func(name string, stored func(i int) bool) {
		t.Helper()
		img := NewImage(testSeq, testSize, 0)
		for i := len(FooterMagic); i < FooterSize; i++ {
			if stored(i) {
				img[at+int64(i)] = full[i]
			}
		}
		if _, err := DecodeFooter(img, h); !errors.Is(err, ErrNoFooter) {
			t.Errorf("%s: %v, want ErrNoFooter", name, err)
		}
	}
	// A copy may store its chunks in any order: every prefix, every
	// suffix, and every 16-byte chunk alone.
	for n := len(FooterMagic); n <= FooterSize; n++ {
		check(fmt.Sprintf("bytes 8..%d", n), func(i int) bool { return i < n })
		check(fmt.Sprintf("bytes %d..128", n), func(i int) bool { return i >= n })
	}
	for c := 0; c < FooterSize; c += 16 {
		check(fmt.Sprintf("chunk %d", c), func(i int) bool { return i >= c && i < c+16 })
	}
}

// TestStoreFooter checks that StoreFooter leaves the bytes Encode makes,
// into an aligned footer (a mapping's) and a buffer at an odd offset.
func TestStoreFooter(t *testing.T) {
	want := make([]byte, FooterSize)
	testFooter().Encode(want)
	for _, shift := range []int{0, 3} {
		buf := make([]byte, FooterSize+8)
		dst := buf[shift : shift+FooterSize]
		for i := range dst {
			dst[i] = 0xee // StoreFooter overwrites every byte
		}
		StoreFooter(dst, testFooter())
		if !bytes.Equal(dst, want) {
			t.Fatalf("shift %d: stored % x\nwant % x", shift, dst, want)
		}
	}
}

// TestDecodeFooterAnyAlignment checks that a footer decodes alike where
// its magic is loaded atomically (8-byte aligned, as in a mapping) and
// where it is not (a copy at an odd offset): sealed, not sealed, a seal
// that did not finish, and a bad magic with its bytes in the message.
func TestDecodeFooterAnyAlignment(t *testing.T) {
	h := Header{Seq: testSeq, Size: testSize}
	var sealed [FooterSize]byte
	testFooter().Encode(sealed[:])
	unfinished := sealed
	copy(unfinished[:8], make([]byte, 8))
	bad := sealed
	bad[2] = 'x'
	le.PutUint32(bad[124:], crc32.Checksum(bad[:124], castagnoli))
	for _, shift := range []int{0, 1, 4} {
		buf := make([]byte, FooterSize+8)
		b := buf[shift : shift+FooterSize]
		copy(b, sealed[:])
		if got, err := decodeFooterAt(b, h); err != nil || got != testFooter() {
			t.Errorf("shift %d: sealed footer: %+v, %v", shift, got, err)
		}
		copy(b, make([]byte, FooterSize))
		if _, err := decodeFooterAt(b, h); err != ErrNoFooter {
			t.Errorf("shift %d: zero footer: %v, want ErrNoFooter", shift, err)
		}
		copy(b, unfinished[:])
		if _, err := decodeFooterAt(b, h); err != ErrSealUnfinished {
			t.Errorf("shift %d: footer without magic: %v, want ErrSealUnfinished", shift, err)
		}
		copy(b, bad[:])
		_, err := decodeFooterAt(b, h)
		if err == nil || !strings.Contains(err.Error(), `bad footer magic "AUxSEAL1"`) {
			t.Errorf("shift %d: bad magic: %v", shift, err)
		}
	}
}
