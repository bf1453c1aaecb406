package segment

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestWalk runs Walk over the standard fixture damaged in one way per case
// and compares the whole event sequence, with exact offsets and lengths.
func TestWalk(t *testing.T) {
	fx := buildFixture(true)
	o := fx.offs // 64, 96, 120, 184, 328
	if fmt.Sprint(o) != "[64 96 120 184 328]" || fx.end != 360 {
		t.Fatalf("fixture layout changed: %v end %d", o, fx.end)
	}
	rl := RecordLimit(testSize)
	endLen := rl - fx.end
	ev := func(kind string, off, n int64) string { return fmt.Sprintf("%s@%d+%d", kind, off, n) }
	frames := func(is ...int) string {
		var s []string
		for _, i := range is {
			s = append(s, ev("frame", o[i], fx.ext(i)))
		}
		return strings.Join(s, " ")
	}
	end := ev("end", fx.end, endLen)

	cases := []struct {
		name    string
		noEnd   bool
		mode    WalkMode
		from    int64
		corrupt func(img []byte)
		want    string
		stop    int64
	}{
		{name: "clean", want: frames(0, 1, 2, 3, 4) + " " + end, stop: fx.end},
		{name: "clean live", mode: Live, want: frames(0, 1, 2, 3, 4) + " " + end, stop: fx.end},
		{name: "from the middle", from: o[3], want: frames(3, 4) + " " + end, stop: fx.end},
		{name: "from the end frame", from: fx.end, want: end, stop: fx.end},
		{name: "pad frame", corrupt: func(img []byte) { PutPad(img, testSeq, o[3], fx.ext(3)) },
			want: frames(0, 1, 2) + " " + ev("frame", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},

		// A writer died between claim and commit: its negative length
		// gives the extent to skip, whatever the bytes inside hold.
		{name: "reserved, written", corrupt: func(img []byte) { StoreLength(img, o[3], -int32(FrameHeaderSize+120)) },
			want: frames(0, 1, 2) + " " + ev("reserved", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "reserved, claim only", corrupt: func(img []byte) {
			clear(img[o[3] : o[3]+144])
			StoreLength(img, o[3], -141) // extent Align(141) = 144
		}, want: frames(0, 1, 2) + " " + ev("reserved", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "reserved first and last", corrupt: func(img []byte) {
			StoreLength(img, o[0], -29)
			StoreLength(img, o[4], -31)
		}, want: ev("reserved", o[0], 32) + " " + frames(1, 2, 3) + " " + ev("reserved", o[4], 32) + " " + end, stop: fx.end},
		{name: "reserved live is pending", mode: Live, corrupt: func(img []byte) { StoreLength(img, o[3], -144) },
			want: frames(0, 1, 2) + " " + ev("pending", o[3], 0), stop: o[3]},

		// A writer died between its atomic add and its claim store: zeros,
		// then committed frames. Only a frame after the zeros makes it a gap.
		{name: "gap of one frame", corrupt: func(img []byte) { clear(img[o[1]:o[2]]) },
			want: frames(0) + " " + ev("gap", o[1], 24) + " " + frames(2, 3, 4) + " " + end, stop: fx.end},
		{name: "gap of two frames", corrupt: func(img []byte) { clear(img[o[2]:o[4]]) },
			want: frames(0, 1) + " " + ev("gap", o[2], o[4]-o[2]) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "gap before reserved", corrupt: func(img []byte) {
			clear(img[o[1]:o[2]])
			StoreLength(img, o[2], -64)
		}, want: frames(0) + " " + ev("gap", o[1], 24) + " " + ev("reserved", o[2], 64) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "gap before end", corrupt: func(img []byte) { clear(img[o[4]:fx.end]) },
			want: frames(0, 1, 2, 3) + " " + ev("gap", o[4], 32) + " " + end, stop: fx.end},
		{name: "gap live is pending", mode: Live, corrupt: func(img []byte) { clear(img[o[1]:o[2]]) },
			want: frames(0) + " " + ev("pending", o[1], 0), stop: o[1]},

		// Damage: the walk reports the bytes it cannot attribute and resumes
		// at the next frame whose CRC matches.
		{name: "torn payload", corrupt: func(img []byte) { img[o[3]+FrameHeaderSize+50] ^= 0xff },
			want: frames(0, 1, 2) + " " + ev("torn", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "torn header", corrupt: func(img []byte) { img[o[1]+17] ^= 1 }, // a time byte
			want: frames(0) + " " + ev("torn", o[1], 24) + " " + frames(2, 3, 4) + " " + end, stop: fx.end},
		{name: "torn length huge", corrupt: func(img []byte) { le.PutUint32(img[o[2]:], math.MaxInt32) },
			want: frames(0, 1) + " " + ev("torn", o[2], 64) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "torn length too short", corrupt: func(img []byte) { le.PutUint32(img[o[3]:], 32) },
			want: frames(0, 1, 2) + " " + ev("torn", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "torn bad type", corrupt: func(img []byte) { img[o[0]+8] = 0x42 },
			want: ev("torn", o[0], 32) + " " + frames(1, 2, 3, 4) + " " + end, stop: fx.end},
		{name: "torn two frames", corrupt: func(img []byte) {
			img[o[1]+20] = 1
			img[o[2]+30] ^= 1
		}, want: frames(0) + " " + ev("torn", o[1], o[3]-o[1]) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "torn reserved bytes live", mode: Live, corrupt: func(img []byte) { img[o[2]+10] = 1 },
			want: frames(0, 1) + " " + ev("torn", o[2], 64) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "copied frame does not validate", corrupt: func(img []byte) { copy(img[o[4]:fx.end], img[o[0]:o[1]]) },
			want: frames(0, 1, 2, 3) + " " + ev("torn", o[4], 32) + " " + end, stop: fx.end},
		{name: "garbage after zeros is torn", corrupt: func(img []byte) {
			clear(img[o[1]:o[3]])
			img[o[2]+8] = 0x5a // not a frame: the zeros are not a gap
		}, want: frames(0) + " " + ev("torn", o[1], o[3]-o[1]) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "zeros too short for a claim are torn", corrupt: func(img []byte) {
			clear(img[o[1]:o[3]])
			PutFrame(img, testSeq, o[1]+16, TypeData, 1, make([]byte, 48)) // ends at o[3]
		}, want: frames(0) + " " + ev("torn", o[1], 16) + " " + ev("frame", o[1]+16, 72) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "zeros too short for a claim before reserved", corrupt: func(img []byte) {
			clear(img[o[1]:o[3]])
			StoreLength(img, o[1]+8, -80) // ends at o[3]
		}, want: frames(0) + " " + ev("torn", o[1], 8) + " " + ev("reserved", o[1]+8, 80) + " " + frames(3, 4) + " " + end, stop: fx.end},
		{name: "length word zero, header kept", corrupt: func(img []byte) { StoreLength(img, o[3], 0) },
			want: frames(0, 1, 2) + " " + ev("torn", o[3], 144) + " " + frames(4) + " " + end, stop: fx.end},
		{name: "torn end", corrupt: func(img []byte) { img[fx.end+16] ^= 1 },
			want: frames(0, 1, 2, 3, 4) + " " + ev("torn", fx.end, endLen), stop: rl},
		{name: "torn at the start, resync to end", corrupt: func(img []byte) {
			for i := o[0]; i < fx.end; i++ {
				img[i] ^= 0x33
			}
		}, want: ev("torn", o[0], fx.end-o[0]) + " " + end, stop: fx.end},

		// Never finished: no END frame.
		{name: "tail", noEnd: true, want: frames(0, 1, 2, 3, 4) + " " + ev("tail", fx.end, rl-fx.end), stop: fx.end},
		{name: "tail after reserved", noEnd: true, corrupt: func(img []byte) { StoreLength(img, o[4], -29) },
			want: frames(0, 1, 2, 3) + " " + ev("reserved", o[4], 32) + " " + ev("tail", fx.end, rl-fx.end), stop: fx.end},
		{name: "tail live is pending", noEnd: true, mode: Live, want: frames(0, 1, 2, 3, 4) + " " + ev("pending", fx.end, 0), stop: fx.end},
		{name: "empty", noEnd: true, corrupt: func(img []byte) { clear(img[HeaderSize:]) },
			want: ev("tail", HeaderSize, rl-HeaderSize), stop: HeaderSize},
		{name: "garbage in the last word", noEnd: true, corrupt: func(img []byte) { img[rl-1] = 1 },
			want: frames(0, 1, 2, 3, 4) + " " + ev("torn", fx.end, rl-fx.end), stop: rl},
		{name: "footer bytes are not walked", noEnd: true, corrupt: func(img []byte) { img[rl] = 1 },
			want: frames(0, 1, 2, 3, 4) + " " + ev("tail", fx.end, rl-fx.end), stop: fx.end},

		// Bad starting points never panic.
		{name: "from unaligned", from: o[1] + 4, want: ev("torn", o[1]+4, o[2]-o[1]-4) + " " + frames(2, 3, 4) + " " + end, stop: fx.end},
		{name: "from inside the header", from: 8, want: ev("torn", 8, HeaderSize-8) + " " + frames(0, 1, 2, 3, 4) + " " + end, stop: fx.end},
		{name: "from negative", from: -64, want: ev("torn", -64, HeaderSize+64) + " " + frames(0, 1, 2, 3, 4) + " " + end, stop: fx.end},
		{name: "from the record limit", from: rl, want: "", stop: rl},
		{name: "from past the file", from: testSize * 2, want: "", stop: testSize * 2},
		{name: "from max int", from: math.MaxInt64, want: "", stop: math.MaxInt64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(buildFixture(!tc.noEnd).img)
			if tc.corrupt != nil {
				tc.corrupt(img)
			}
			from := tc.from
			if from == 0 {
				from = HeaderSize
			}
			got, stop := evs(img, testSeq, from, tc.mode)
			if got != tc.want {
				t.Errorf("events\n got %s\nwant %s", got, tc.want)
			}
			if stop != tc.stop {
				t.Errorf("stopped at %d, want %d", stop, tc.stop)
			}
		})
	}
}

func TestWalkEventDetails(t *testing.T) {
	fx := buildFixture(true)
	img := fx.img
	img[fx.offs[2]+FrameHeaderSize] ^= 1
	var got []Event
	Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool { got = append(got, ev); return true })
	if len(got) != 6 {
		t.Fatalf("%d events", len(got))
	}
	if f := got[0].Frame; f.State != Committed || string(f.Payload) != "alpha" || f.Time != testTimes[0] {
		t.Fatalf("first frame %+v", f)
	}
	torn := got[2]
	if torn.Kind != EvTorn || torn.Frame.State != Torn {
		t.Fatalf("torn event %+v", torn)
	}
	wantCorrupt(t, torn.Frame.Err, fx.offs[2], "checksum mismatch")
	if got[5].Kind != EvEnd || got[5].Frame.Type != TypeEnd {
		t.Fatalf("last event %+v", got[5])
	}
	for k, name := range map[EventKind]string{EvFrame: "frame", EvEnd: "end", EvReserved: "reserved", EvGap: "gap",
		EvTorn: "torn", EvTail: "tail", EvPending: "pending", 42: "invalid"} {
		if k.String() != name {
			t.Errorf("%d.String() = %q", k, k.String())
		}
	}
}

// Returning false from fn stops the walk at that event's offset.
func TestWalkStopsWhenAsked(t *testing.T) {
	fx := buildFixture(true)
	n := 0
	stop := Walk(fx.img, testSeq, HeaderSize, Quiescent, func(Event) bool { n++; return n < 3 })
	if n != 3 || stop != fx.offs[2] {
		t.Fatalf("stopped after %d events at %d, want 3 at %d", n, stop, fx.offs[2])
	}
}

func TestWalkRejectsBadImages(t *testing.T) {
	for _, img := range [][]byte{nil, make([]byte, 100), make([]byte, MinSegmentSize-8), make([]byte, MinSegmentSize+4)} {
		called := false
		if stop := Walk(img, 1, HeaderSize, Quiescent, func(Event) bool { called = true; return true }); stop != HeaderSize || called {
			t.Errorf("image of %d bytes: stop %d, called %v", len(img), stop, called)
		}
	}
}

func TestResync(t *testing.T) {
	fx := buildFixture(true)
	o := fx.offs
	rl := RecordLimit(testSize)
	for _, tc := range []struct{ from, want int64 }{
		{o[0], o[1]}, {o[0] + 8, o[1]}, {o[1] - 1, o[1]}, {o[1], o[2]}, {o[4], fx.end}, {fx.end, rl},
		{o[1] + 3, o[2]}, {-100, o[0]}, {0, o[0]}, {rl, rl}, {rl - 8, rl}, {math.MaxInt64, rl}, {math.MinInt64, o[0]},
	} {
		if got := Resync(fx.img, testSeq, tc.from); got != tc.want {
			t.Errorf("Resync(%d) = %d, want %d", tc.from, got, tc.want)
		}
	}
	if got := Resync(fx.img, testSeq+1, HeaderSize); got != rl {
		t.Errorf("Resync with another sequence found a frame at %d", got)
	}
	if got := Resync(make([]byte, 64), 1, 0); got > 0 {
		t.Errorf("Resync of a tiny image = %d", got)
	}
}

func TestZeroFrom(t *testing.T) {
	img := make([]byte, 1024)
	if ZeroFrom(img, 64, 1024) != 1024 {
		t.Fatal("all zero")
	}
	img[517] = 9
	for _, from := range []int64{64, 512, 516, 517} {
		if got := ZeroFrom(img, from, 1024); got != 517 {
			t.Fatalf("ZeroFrom(%d) = %d, want 517", from, got)
		}
	}
	if ZeroFrom(img, 520, 1024) != 1024 || ZeroFrom(img, 64, 512) != 512 {
		t.Fatal("bounds")
	}
	// A record's padding: up to 7 bytes before an aligned limit.
	for from := int64(512); from <= 520; from++ {
		want := int64(520)
		if from <= 517 {
			want = 517
		}
		if got := ZeroFrom(img, from, 520); got != want {
			t.Fatalf("ZeroFrom(%d, 520) = %d, want %d", from, got, want)
		}
	}
	if got := ZeroFrom(img[:4], 0, 8); got != 4 {
		t.Fatalf("limit past the image: %d", got)
	}
}

// TestZeroFromLong covers the block-at-a-time path: one non-zero byte at
// every kind of place in a long zero run (block boundaries, inside a
// block, in the last partial block), from aligned and unaligned starts.
func TestZeroFromLong(t *testing.T) {
	const n = 5*4096 + 100 // zeroBlock is 4 KiB
	img := make([]byte, n)
	for _, at := range []int{0, 7, 8, 4095, 4096, 4097, 3*4096 - 1, 3 * 4096, 5 * 4096, n - 9, n - 1} {
		img[at] = 0x80
		for _, from := range []int{0, 1, 8, 4096, at / 2, at} {
			if from > at {
				continue
			}
			if got := ZeroFrom(img, int64(from), n); got != int64(at) {
				t.Fatalf("byte at %d: ZeroFrom(%d) = %d", at, from, got)
			}
			want := int64(at) &^ (Alignment - 1)
			if want+Alignment > n {
				want = n // only whole words are nextNonZero's; ZeroFrom reads the rest
			}
			if from%Alignment == 0 {
				if got := nextNonZero(img, int64(from), n); got != max(want, int64(from)) {
					t.Fatalf("byte at %d: nextNonZero(%d) = %d, want %d", at, from, got, want)
				}
			}
		}
		if got := ZeroFrom(img, int64(at)+1, n); got != n {
			t.Fatalf("after the byte at %d: ZeroFrom = %d, want %d", at, got, n)
		}
		img[at] = 0
	}
}

// TestPaddingZero: PaddingZero agrees with ZeroFrom over the padding of a
// record ending at every offset of a few words, with a non-zero byte at
// every place, and is false (not a panic) when the word is not in img.
func TestPaddingZero(t *testing.T) {
	img := make([]byte, 64)
	for at := -1; at < len(img); at++ {
		if at >= 0 {
			img[at] = 1
		}
		for end := int64(0); end <= int64(len(img)); end++ {
			ext := Align(end)
			want := ZeroFrom(img, end, ext) == ext
			if got := PaddingZero(img, end); got != want {
				t.Fatalf("byte at %d, end %d: PaddingZero = %v, ZeroFrom says %v", at, end, got, want)
			}
		}
		if at >= 0 {
			img[at] = 0
		}
	}
	for _, end := range []int64{-9, -1, 65, 1<<62 + 3, 1<<63 - 1} {
		if PaddingZero(img, end) {
			t.Fatalf("PaddingZero(%d) outside a 64-byte image = true", end)
		}
	}
	// An aligned end has no padding, wherever it is.
	if !PaddingZero(nil, 0) || !PaddingZero(img, 1<<62) {
		t.Fatal("PaddingZero of an aligned end = false")
	}
}

// TestWalkTornErrors: every torn event carries an error naming its offset,
// including bytes behind a zero commit word (they had none, and the reader
// printed "<nil>" for them); in Sealed mode zeros before a frame and a
// claim are torn too, and the walk resumes at the next frame.
func TestWalkTornErrors(t *testing.T) {
	fx := buildFixture(true)
	img := fx.img
	StoreLength(img, fx.offs[2], 0) // the rest of that header stays
	var got []Event
	Walk(img, testSeq, HeaderSize, Quiescent, func(ev Event) bool { got = append(got, ev); return true })
	if len(got) < 3 || got[2].Kind != EvTorn {
		t.Fatalf("events %+v", got)
	}
	wantCorrupt(t, got[2].Frame.Err, fx.offs[2], "no frame was written")

	// Zeros first, then a non-zero byte: the error names where the torn
	// region starts, as the event does (and verify, inspect and tail,
	// which print one or the other), and says where the non-zero byte is.
	fx = buildFixture(true)
	nz := fx.offs[2] + 16
	clear(fx.img[fx.offs[2]:nz])
	fx.img[nz] = 0x5a
	got = got[:0]
	Walk(fx.img, testSeq, HeaderSize, Quiescent, func(ev Event) bool { got = append(got, ev); return true })
	if len(got) < 3 || got[2].Kind != EvTorn || got[2].Offset != fx.offs[2] {
		t.Fatalf("events %+v", got)
	}
	wantCorrupt(t, got[2].Frame.Err, fx.offs[2], fmt.Sprintf("first non-zero byte at %d", nz))

	for name, corrupt := range map[string]func([]byte){
		"gap":   func(img []byte) { clear(img[fx.offs[2]:fx.offs[3]]) },
		"claim": func(img []byte) { StoreLength(img, fx.offs[2], -int32(RecordLimit(int64(len(img)))-fx.offs[2])) },
	} {
		fx := buildFixture(true)
		corrupt(fx.img)
		got = got[:0]
		Walk(fx.img, testSeq, HeaderSize, Sealed, func(ev Event) bool { got = append(got, ev); return true })
		if len(got) < 4 || got[2].Kind != EvTorn || got[2].Offset+got[2].Len != fx.offs[3] || got[3].Kind != EvFrame {
			t.Fatalf("%s: events %+v", name, got)
		}
		wantCorrupt(t, got[2].Frame.Err, fx.offs[2], "sealed segment")
	}
}
