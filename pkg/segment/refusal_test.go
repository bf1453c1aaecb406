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
			wantCorrupt(t, got, tc.want.off, tc.want.reason)
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
