package segment

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// ScanCheckIn tallies in its own loop what a caller of ScanDataIn tallies
// with Add: the same records, extremes and stop offset, and the records
// Add does not pass (a time out of bounds, non-zero padding, padding the
// window cuts) handed on in order. Frames in batches of one, two and
// three (a PAD frame among them), and a damaged CRC, stop both alike.
func TestScanCheckInIsScanDataInWithAdd(t *testing.T) {
	const size = MinSegmentSize
	img := NewImage(testSeq, size, 1)
	var offs []int64
	off := int64(HeaderSize)
	for i := range 40 {
		offs = append(offs, off)
		if i == 7 {
			PutPad(img, testSeq, off, 64)
			off += 64
			continue
		}
		off = PutFrame(img, testSeq, off, TypeData, int64(1000+(i*37)%50), bytes.Repeat([]byte{'r'}, 1+i%13))
	}
	// Non-zero padding after record 11 (CRC intact: it does not cover it).
	if p := offs[11] + FrameHeaderSize + int64(1+11%13); p%Alignment != 0 {
		img[p] = 1
	} else {
		t.Fatalf("record 11 has no padding")
	}
	damaged := bytes.Clone(img)
	damaged[offs[29]+FrameHeaderSize] ^= 1 // record 29's CRC fails

	type call struct{ off, length, ts int64 }
	for name, im := range map[string][]byte{"intact": img, "damaged": damaged} {
		// Windows ending after the last frame, in its padding, and inside
		// the header of the frame after record 20.
		for _, end := range []int64{off, off - 5, offs[21] + 3} {
			base := int64(HeaderSize)
			win := im[base:end]
			for _, from := range []int64{offs[0], offs[3], offs[8]} {
				t.Run(fmt.Sprintf("%s/end%d/from%d", name, end, from), func(t *testing.T) {
					want := NewRecordTally()
					want.TimeLo, want.TimeHi = 1010, 1040
					got := want
					var wantOdd, gotOdd []call
					wantStop := ScanDataIn(win, base, size, testSeq, from, off, func(o, ts int64, _ uint32, p []byte) {
						if l := int64(FrameHeaderSize + len(p)); !want.Add(win, base, o+l, ts) {
							wantOdd = append(wantOdd, call{o, l, ts})
						}
					})
					gotStop := ScanCheckIn(win, base, size, testSeq, from, off, &got, func(o, l, ts int64) {
						gotOdd = append(gotOdd, call{o, l, ts})
					})
					if gotStop != wantStop || got != want || !slices.Equal(gotOdd, wantOdd) {
						t.Fatalf("ScanCheckIn: stop %d, %+v, odd %v\nScanDataIn: stop %d, %+v, odd %v", gotStop, got, gotOdd, wantStop, want, wantOdd)
					}
					if want.Records == 0 || len(wantOdd) == 0 {
						t.Fatalf("nothing tallied or nothing odd: %+v, %v", want, wantOdd)
					}
				})
			}
		}
	}
}
