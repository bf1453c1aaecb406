package segment

import (
	"crypto/sha256"
	"testing"

	lblake3 "lukechampine.com/blake3"
)

// BenchmarkDigest compares the sealing digest (github.com/zeebo/blake3)
// with the hashes it was chosen over, on one 64 MiB segment image. Run with
// -cpu 1,2: the sealer shares the machine with the appenders, so the speed
// on one core is what counts.
//
//	go test -run '^$' -bench Digest -cpu 1,2 ./pkg/segment
func BenchmarkDigest(b *testing.B) {
	img := make([]byte, DefaultSegmentSize)
	for i := range img {
		img[i] = byte(i * 7)
	}
	end := RecordLimit(DefaultSegmentSize) - FrameHeaderSize
	var prev [DigestSize]byte
	b.Run("zeebo-blake3", func(b *testing.B) {
		b.SetBytes(end + FrameHeaderSize)
		for range b.N {
			Digest(prev, img, end)
		}
	})
	b.Run("lukechampine-blake3", func(b *testing.B) {
		b.SetBytes(end + FrameHeaderSize)
		for range b.N {
			h := lblake3.New(DigestSize, nil)
			h.Write(prev[:])
			h.Write(img[:end+FrameHeaderSize])
			h.Sum(nil)
		}
	})
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(end + FrameHeaderSize)
		for range b.N {
			h := sha256.New()
			h.Write(prev[:])
			h.Write(img[:end+FrameHeaderSize])
			h.Sum(nil)
		}
	})
}
