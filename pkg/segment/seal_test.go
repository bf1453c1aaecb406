package segment

import (
	"bytes"
	"strings"
	"testing"
)

func TestSeal(t *testing.T) {
	fx := buildFixture(true)
	PutPad(fx.img, testSeq, fx.offs[1], fx.ext(1)) // a PAD is not a record
	f, err := Seal(fx.img, [DigestSize]byte{}, FlagRecovered, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := Footer{Seq: testSeq, Records: 4, EndOffset: fx.end, MinTime: testTimes[3], MaxTime: testTimes[2],
		SealedAt: 42, Flags: FlagRecovered, Digest: Digest([DigestSize]byte{}, fx.img, fx.end)}
	if f != want {
		t.Fatalf("footer\n got %+v\nwant %+v", f, want)
	}
	h, _ := DecodeHeader(fx.img)
	got, err := DecodeFooter(fx.img, h)
	if err != nil || got != f {
		t.Fatalf("stored footer %+v, %v", got, err)
	}
	// Sealing again is idempotent: the footer is outside the digest.
	again, err := Seal(fx.img, [DigestSize]byte{}, FlagRecovered, 42)
	if err != nil || again != f {
		t.Fatalf("second seal %+v, %v", again, err)
	}
}

func TestSealTimes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		times            []int64
		records          uint64
		minTime, maxTime int64
	}{
		{"none", nil, 0, 0, 0},
		{"one", []int64{5}, 1, 5, 5},
		{"descending", []int64{9, 7, 3}, 3, 3, 9},
		{"negative", []int64{-9, -3, -7}, 3, -9, -3},
		{"mixed", []int64{-2, 4, 0}, 3, -2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := NewImage(testSeq, testSize, 0)
			off := int64(HeaderSize)
			for _, ts := range tc.times {
				off = PutFrame(img, testSeq, off, TypeData, ts, []byte("r"))
			}
			PutEnd(img, testSeq, off, 0)
			f, err := Seal(img, [DigestSize]byte{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if f.Records != tc.records || f.MinTime != tc.minTime || f.MaxTime != tc.maxTime || f.EndOffset != off {
				t.Fatalf("footer %+v, want records %d min %d max %d end %d", f, tc.records, tc.minTime, tc.maxTime, off)
			}
			var tl Tally = NewTally()
			if !tl.Advance(img) || tl.Records != tc.records || tl.MinTime != tc.minTime || tl.MaxTime != tc.maxTime || tl.Off != off {
				t.Fatalf("tally %+v, want records %d min %d max %d end %d", tl, tc.records, tc.minTime, tc.maxTime, off)
			}
		})
	}
}

// The digest chain: each footer stores its predecessor's digest, so any
// segment verifies alone, even after older segments are deleted.
func TestDigestChain(t *testing.T) {
	var prev, zero [DigestSize]byte
	var imgs [][]byte
	var foots []Footer
	for i := range 3 {
		seq := uint64(i + 1)
		img := NewImage(seq, testSize, int64(i))
		off := PutFrame(img, seq, HeaderSize, TypeData, int64(i), []byte{byte(i)})
		PutEnd(img, seq, off, 0)
		f, err := Seal(img, prev, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if f.PrevDigest != prev {
			t.Fatalf("segment %d: prev digest not stored", seq)
		}
		prev = f.Digest
		imgs, foots = append(imgs, img), append(foots, f)
	}
	if foots[0].PrevDigest != zero {
		t.Fatal("first segment does not chain from zeros")
	}
	for i, f := range foots {
		if Digest(f.PrevDigest, imgs[i], f.EndOffset) != f.Digest {
			t.Fatalf("segment %d does not verify from its own footer", i+1)
		}
		if i > 0 && f.PrevDigest != foots[i-1].Digest {
			t.Fatalf("segment %d does not chain to %d", i+1, i)
		}
	}
	// Any change to the header, a frame or the END header breaks the digest.
	for _, at := range []int64{0, 33, HeaderSize + 25, foots[1].EndOffset + 8} {
		img := bytes.Clone(imgs[1])
		img[at] ^= 1
		if Digest(foots[1].PrevDigest, img, foots[1].EndOffset) == foots[1].Digest {
			t.Errorf("byte %d is not covered by the digest", at)
		}
	}
	// Bytes after the END header (zeros a reader never parses) are not.
	img := bytes.Clone(imgs[1])
	img[foots[1].EndOffset+FrameHeaderSize] ^= 1
	if Digest(foots[1].PrevDigest, img, foots[1].EndOffset) != foots[1].Digest {
		t.Error("digest covers bytes after the END header")
	}
}

func TestSealRefuses(t *testing.T) {
	fx0 := buildFixture(true)
	o := fx0.offs
	cases := []struct {
		name    string
		noEnd   bool
		corrupt func(img []byte) []byte
		off     int64
		reason  string
	}{
		{name: "reserved frame", corrupt: func(img []byte) []byte { StoreLength(img, o[2], -64); return img }, off: o[2], reason: "reserved"},
		{name: "gap", corrupt: func(img []byte) []byte { clear(img[o[1]:o[2]]); return img }, off: o[1], reason: "gap"},
		{name: "torn", corrupt: func(img []byte) []byte { img[o[3]+30] ^= 1; return img }, off: o[3], reason: "torn"},
		{name: "no end", noEnd: true, off: fx0.end, reason: "cannot seal: tail"},
		{name: "torn end", corrupt: func(img []byte) []byte { img[fx0.end+16] ^= 1; return img }, off: fx0.end, reason: "torn"},
		{name: "bad header", corrupt: func(img []byte) []byte { img[3] ^= 1; return img }, off: 0, reason: "bad magic"},
		{name: "short image", corrupt: func(img []byte) []byte { return img[:testSize-8] }, off: 0, reason: "header says"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := buildFixture(!tc.noEnd).img
			if tc.corrupt != nil {
				img = tc.corrupt(img)
			}
			before := bytes.Clone(img)
			_, err := Seal(img, [DigestSize]byte{9}, 0, 1)
			wantCorrupt(t, err, tc.off, tc.reason)
			// The offset once: the reason used to repeat it ("offset
			// 360: cannot seal: torn at offset 360").
			if n := strings.Count(err.Error(), "offset"); n != 1 {
				t.Errorf("%q names an offset %d times", err, n)
			}
			if !bytes.Equal(img, before) {
				t.Fatal("a refused seal wrote to the image")
			}
		})
	}
}

// Tally follows commit words as a writer commits them and seals exactly as
// Seal does.
func TestTally(t *testing.T) {
	img := NewImage(testSeq, testSize, 0)
	tl := NewTally()
	if tl.Advance(img) || tl.Off != HeaderSize {
		t.Fatal("tally advanced over zeros")
	}
	// Two claims; the second commits first.
	a, b := int64(HeaderSize), int64(HeaderSize)+FrameSize(3)
	StoreLength(img, a, -27)
	end := PutFrame(img, testSeq, b, TypeData, 10, []byte("bbbb"))
	if tl.Advance(img) || tl.Off != a || tl.Records != 0 {
		t.Fatalf("tally passed a reserved frame: %+v", tl)
	}
	PutFrame(img, testSeq, a, TypeData, 20, []byte("aaa"))
	if tl.Advance(img) || tl.Off != end || tl.Records != 2 || tl.MinTime != 10 || tl.MaxTime != 20 {
		t.Fatalf("tally %+v", tl)
	}
	padAt := end
	end += 64
	StoreLength(img, padAt, -64)
	PutPad(img, testSeq, padAt, 64) // an aborted reservation
	PutEnd(img, testSeq, end, 0)
	if !tl.Advance(img) || !tl.End || tl.Off != end || tl.Records != 2 {
		t.Fatalf("tally at END: %+v", tl)
	}
	if !tl.Advance(img) {
		t.Fatal("Advance after END")
	}
	viaSeal := bytes.Clone(img)
	want, err := Seal(viaSeal, [DigestSize]byte{1}, 0, 77)
	if err != nil {
		t.Fatal(err)
	}
	got := sealTallied(img, tl, [DigestSize]byte{1}, 77)
	if got != want || !bytes.Equal(img, viaSeal) {
		t.Fatalf("TalliedFooter %+v\nSeal          %+v", got, want)
	}
}

// sealTallied seals img the writer's way: TalliedFooter, then the footer
// written where Seal writes it.
func sealTallied(img []byte, tl Tally, prev [DigestSize]byte, sealedAt int64) Footer {
	f := TalliedFooter(img, testSeq, tl, NewDigestStream(prev), 0, sealedAt)
	f.Encode(img[int64(len(img))-FooterSize:])
	return f
}

// The recovery procedure of docs/FORMAT.md section 8, applied with the
// builders to segments a writer left behind when it died: every PAD and
// END it writes decodes, the segment seals, and every committed record is
// still there, unchanged.
func TestRecoveryProcedureSeals(t *testing.T) {
	dl := DataLimit(testSize)
	fx := buildFixture(false)
	o := fx.offs
	cases := []struct {
		name    string
		corrupt func(img []byte)
	}{
		{"tail only", func(img []byte) {}},
		{"reserved and gap", func(img []byte) {
			StoreLength(img, o[1], -24)
			clear(img[o[3] : o[3]+144])
		}},
		{"reserved up to the data limit", func(img []byte) {
			StoreLength(img, fx.end, -int32(dl-fx.end)) // the last claim that fits
		}},
		{"crossing writer died", func(img []byte) {
			// Frames up to DataLimit; the writer that crossed never wrote END.
			PutFrame(img, testSeq, fx.end, TypeData, 9, make([]byte, dl-fx.end-FrameHeaderSize))
		}},
		{"gap up to the last frame", func(img []byte) {
			clear(img[o[0]:o[4]])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(fx.img)
			tc.corrupt(img)
			var before [][]byte
			var pads [][2]int64
			end := int64(-1)
			Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool {
				switch ev.Kind {
				case EvFrame:
					before = append(before, bytes.Clone(ev.Frame.Payload))
				case EvReserved, EvGap:
					pads = append(pads, [2]int64{ev.Offset, ev.Len})
				case EvTail:
					end = ev.Offset
				default:
					t.Fatalf("unexpected %v at %d", ev.Kind, ev.Offset)
				}
				return true
			})
			for _, p := range pads {
				PutPad(img, testSeq, p[0], p[1])
			}
			if end < 0 {
				t.Fatal("no tail")
			}
			PutEnd(img, testSeq, end, 1)
			f, err := Seal(img, [DigestSize]byte{}, FlagRecovered, 2)
			if err != nil {
				t.Fatal(err)
			}
			var after [][]byte
			Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool {
				if ev.Kind == EvFrame && ev.Frame.Type == TypeData {
					after = append(after, ev.Frame.Payload)
				}
				return true
			})
			if len(after) != len(before) || f.Records != uint64(len(before)) || f.EndOffset != end || f.Flags != FlagRecovered {
				t.Fatalf("records %d before, %d after, footer %+v", len(before), len(after), f)
			}
			for i := range after {
				if !bytes.Equal(after[i], before[i]) {
					t.Fatalf("record %d changed", i)
				}
			}
		})
	}
}
