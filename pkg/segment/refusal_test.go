package segment

import (
	"fmt"
	"path/filepath"
	"testing"
)

// judge is recovery's judgment of img, the segment file at path of
// fileSize bytes, walked whole (Quiescent) as the reader does.
func judge(path string, img []byte, fileSize int64) *CorruptError {
	h, herr := DecodeHeader(img)
	valid := min(fileSize, int64(len(img)))
	r := RecoveryRefusal(path, h, herr, fileSize, img, valid)
	if r.Refused() == nil {
		WalkValid(img, h.Seq, HeaderSize, Quiescent, valid, func(ev Event) bool { return r.Event(&ev) == nil })
	}
	return r.Refused()
}

// RecoveryRefusal is the one judgment recovery, verify and the reader
// make of a dead writer's unsealed segment (FORMAT.md section 8, steps
// 3.1, 3.2, 3.4): what it refuses, for what reason, naming the file and
// the offset; and what it leaves to recovery (leftovers, an END claim
// with only zeros behind it).
func TestRecoveryRefusal(t *testing.T) {
	path := filepath.Join("log", FileName(testSeq))
	limit := RecordLimit(testSize)
	type found struct {
		off    int64
		reason string
	}
	cases := []struct {
		name     string
		damage   func(img []byte, end int64) []byte // end: after the last frame
		fileSize int64                              // 0: the image's
		want     *found
	}{
		{"leftovers", func(img []byte, end int64) []byte {
			StoreLength(img, end, -FrameHeaderSize-8) // a reservation, then the tail
			return img
		}, 0, nil},
		{"clean END claim", func(img []byte, end int64) []byte {
			StoreLength(img, end, -int32(limit-end))
			return img
		}, 0, nil},
		{"bad header", func(img []byte, _ int64) []byte {
			img[0] = 'x'
			return img
		}, 0, &found{0, "its header is damaged: bad magic"}},
		{"file longer than its header says", func(img []byte, _ int64) []byte {
			return img
		}, testSize + 4096, &found{testSize, "its header disagrees with the file: file is 69632 bytes, header says 65536"}},
		{"header of another segment", func([]byte, int64) []byte {
			return NewImage(testSeq+1, testSize, 0)
		}, 0, &found{16, "its header disagrees with the file: header sequence 8 does not match the file name"}},
		{"torn frame", func(img []byte, _ int64) []byte {
			img[HeaderSize+FrameHeaderSize] ^= 0xff
			return img
		}, 0, &found{HeaderSize, fmt.Sprintf("a committed frame in it is torn (at offset %d)", HeaderSize)}},
		// The last frame torn by a power cut (its Append had not
		// returned), nothing intact after it: a torn tail, which
		// recovery finishes (step 3.5). Both ways its pages can reach
		// the disk apart.
		{"torn tail, payload zeroed", func(img []byte, _ int64) []byte {
			tearPayload(img, 4)
			return img
		}, 0, nil},
		{"torn tail, header zeroed", func(img []byte, _ int64) []byte {
			tearHeader(img, 4)
			return img
		}, 0, nil},
		// The same tears with an intact committed frame after them:
		// damage, as before.
		{"torn frame, payload zeroed, then a frame", func(img []byte, _ int64) []byte {
			tearPayload(img, 3)
			return img
		}, 0, &found{fixtureOff(3), fmt.Sprintf("a committed frame in it is torn (at offset %d)", fixtureOff(3))}},
		{"torn frame, header zeroed, then a frame", func(img []byte, _ int64) []byte {
			tearHeader(img, 3)
			return img
		}, 0, &found{fixtureOff(3), fmt.Sprintf("a committed frame in it is torn (at offset %d)", fixtureOff(3))}},
		// Residue reaching the last frame header's room before the
		// record limit: no END fits after a PAD over it.
		{"torn tail with no room for END", func(img []byte, end int64) []byte {
			img[limit-1] = 'x'
			return img
		}, 0, &found{-1, "no room for an END frame"}},
		{"END claim with a byte behind its header", func(img []byte, end int64) []byte {
			StoreLength(img, end, -int32(limit-end))
			img[limit-1] = 'x'
			return img
		}, 0, &found{limit - 1, "has a non-zero byte at"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := buildFixture(false)
			img := tc.damage(fx.img, fx.end)
			size := tc.fileSize
			if size == 0 {
				size = int64(len(img))
			}
			got := judge(path, img, size)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("refused: %v; want recovery to finish the segment", got)
				}
				return
			}
			off := tc.want.off
			if off < 0 {
				off = buildFixture(false).end
			}
			wantCorrupt(t, got, off, tc.want.reason)
			if got.Path != path {
				t.Errorf("refusal names %q; want %q", got.Path, path)
			}
		})
	}
}

// A claim in a segment not all read from its file (shorter than its
// header says: refused for that) is not looked behind: the padding that
// stands for the missing bytes is never read.
func TestRecoveryRefusalReadsNothingPastValid(t *testing.T) {
	fx := buildFixture(false)
	limit := RecordLimit(testSize)
	StoreLength(fx.img, fx.end, -int32(limit-fx.end))
	fx.img[limit-1] = 'x' // would refuse, were it read
	r := RecoveryRefusal(FileName(testSeq), Header{Seq: testSeq, Size: testSize}, nil, testSize, fx.img, fx.end+FrameHeaderSize)
	ev := Event{Kind: EvReserved, Offset: fx.end, Len: limit - fx.end}
	if why := r.Event(&ev); why != nil || r.Refused() != nil {
		t.Fatalf("claim judged past the valid bytes: %v", why)
	}
}

// Recovery takes an archive for sealed and never repairs one, so an
// archive of a segment never sealed is refused, at its footer, however
// healthy its leftovers.
func TestRecoveryRefusalOfAnArchive(t *testing.T) {
	fx := buildFixture(false)
	path := filepath.Join("log", ArchiveName(testSeq))
	wantCorrupt(t, judge(path, fx.img, testSize), RecordLimit(testSize), "it is an archive")
}

// fixtureOff is the offset of DATA frame i of the standard fixture.
func fixtureOff(i int) int64 { return buildFixture(false).offs[i] }

// tearPayload zeroes the payload of DATA frame i of the standard
// fixture's img: its header and commit word reached the disk, the page
// with its payload did not.
func tearPayload(img []byte, i int) {
	off := fixtureOff(i)
	clear(img[off+FrameHeaderSize : off+FrameHeaderSize+int64(len(testPayloads[i]))])
}

// tearHeader zeroes the header of DATA frame i: its payload reached the
// disk, the page with its commit word did not.
func tearHeader(img []byte, i int) {
	off := fixtureOff(i)
	clear(img[off : off+FrameHeaderSize])
}

// TornTail says how much of a torn tail the PAD recovery writes covers:
// every non-zero byte, aligned, at least a frame header; and passes no
// other torn region, nor one in a segment not read whole from its file.
func TestTornTailPad(t *testing.T) {
	limit := RecordLimit(testSize)
	last := fixtureOff(4)
	cases := []struct {
		name  string
		tear  func(img []byte)
		valid int64 // 0: the whole image
		pad   int64 // 0: not a torn tail recovery finishes
	}{
		{"payload zeroed", func(img []byte) { tearPayload(img, 4) }, 0, FrameHeaderSize},
		{"header zeroed", func(img []byte) { tearHeader(img, 4) }, 0, FrameSize(len(testPayloads[4]))},
		{"header zeroed, a stray byte further on", func(img []byte) {
			tearHeader(img, 4)
			img[last+1000] = 1
		}, 0, Align(1001)},
		{"an intact frame after it", func(img []byte) { tearPayload(img, 3) }, 0, 0},
		{"file shorter than its header says", func(img []byte) { tearPayload(img, 4) }, testSize - 4096, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := buildFixture(false)
			tc.tear(fx.img)
			valid := tc.valid
			if valid == 0 {
				valid = testSize
			}
			r := RecoveryRefusal(FileName(testSeq), Header{Seq: testSeq, Size: testSize}, nil, testSize, fx.img, valid)
			var pad int64
			var torn int
			WalkValid(fx.img, testSeq, HeaderSize, Quiescent, valid, func(ev Event) bool {
				if ev.Kind == EvTorn {
					torn++
					if p, ok := r.TornTail(&ev); ok {
						pad = p
						if ev.Offset != last || ev.Offset+ev.Len != limit {
							t.Errorf("torn tail %+v; want it at %d, up to %d", ev, last, limit)
						}
					}
				}
				return true
			})
			if torn == 0 || pad != tc.pad {
				t.Fatalf("%d torn regions, PAD of %d bytes; want %d", torn, pad, tc.pad)
			}
		})
	}
}
