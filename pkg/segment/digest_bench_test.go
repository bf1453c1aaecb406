package segment

import (
	"crypto/sha256"
	"hash"
	"testing"

	zeebo "github.com/zeebo/blake3"
	lblake3 "lukechampine.com/blake3"
)

// BenchmarkDigest compares the sealing digest (internal/blake3 where the
// CPU has AVX-512, else github.com/zeebo/blake3) with the hashes it was
// chosen over, on one 64 MiB segment image. Run with
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
	b.Run("digest", func(b *testing.B) {
		b.SetBytes(end + FrameHeaderSize)
		for range b.N {
			Digest(prev, img, end)
		}
	})
	for _, peer := range []struct {
		name string
		new  func() hash.Hash
	}{
		{"zeebo-blake3", func() hash.Hash { return zeebo.New() }},
		{"lukechampine-blake3", func() hash.Hash { return lblake3.New(DigestSize, nil) }},
		{"sha256", sha256.New},
	} {
		b.Run(peer.name, func(b *testing.B) {
			b.SetBytes(end + FrameHeaderSize)
			for range b.N {
				h := peer.new()
				h.Write(prev[:])
				h.Write(img[:end+FrameHeaderSize])
				h.Sum(nil)
			}
		})
	}
}
