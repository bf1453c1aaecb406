package segment

import (
	"hash"

	"github.com/auditseg/auditseg/internal/blake3"
	zeebo "github.com/zeebo/blake3"
)

// Digest computes the sealing digest of a segment whose END frame starts at
// end: BLAKE3-256 over the previous segment's digest, then file bytes
// [0, end+FrameHeaderSize): the header, every frame, and the END frame's
// header. The sealer hashes every byte the appenders write, on the same
// two cores, and full verify hashes every byte of the log, so the hash's
// speed per core bounds both. Measured on one core here (BenchmarkDigest):
// internal/blake3, sixteen chunks at a time in AVX-512 registers, ~6-7 GB/s;
// github.com/zeebo/blake3 (AVX2, no AVX-512 path) ~3 GB/s;
// lukechampine.com/blake3 ~1.7 GB/s (its AVX-512 code gathers); SHA-256
// with SHA-NI ~1.6 GB/s. Machines without AVX-512 use zeebo's.
// TestDigestDefinition checks the result against lukechampine's one-shot
// BLAKE3.
func Digest(prev [DigestSize]byte, img []byte, end int64) [DigestSize]byte {
	return NewDigestStream(prev).Sum(img, end)
}

// DigestStream computes Digest in steps, so that a writer can hash the
// committed prefix of its active segment while appenders are still filling
// the rest: the hashing then overlaps the filling, on bytes still in the
// cache, instead of running over the whole segment after the rotation
// while the next segment waits to be prepared.
type DigestStream struct {
	prev [DigestSize]byte
	h    hash.Hash
	n    int64 // bytes of the image hashed
}

// NewDigestStream starts the digest of the segment that follows the one
// whose digest is prev (zeros for the first segment).
func NewDigestStream(prev [DigestSize]byte) *DigestStream {
	d := &DigestStream{prev: prev, h: newBLAKE3()}
	d.h.Write(prev[:])
	return d
}

// Prev returns the previous digest the stream started from.
func (d *DigestStream) Prev() [DigestSize]byte { return d.prev }

// Hashed returns how many bytes of the image have been hashed.
func (d *DigestStream) Hashed() int64 { return d.n }

// Add hashes img[Hashed():upto]. The caller promises that those bytes
// never change again: they are the header and committed frames.
func (d *DigestStream) Add(img []byte, upto int64) { d.AddIn(img, 0, upto) }

// AddIn is Add on a window of the image: win holds its bytes from offset
// base on, and must hold [Hashed(), upto).
func (d *DigestStream) AddIn(win []byte, base, upto int64) {
	if upto > d.n {
		d.h.Write(win[d.n-base : upto-base])
		d.n = upto
	}
}

// Sum hashes the rest up to the header of the END frame at end and returns
// the digest. The stream must not be used after Sum.
func (d *DigestStream) Sum(img []byte, end int64) [DigestSize]byte {
	d.Add(img, end+FrameHeaderSize)
	var out [DigestSize]byte
	d.h.Sum(out[:0])
	return out
}

// newBLAKE3 returns the fastest BLAKE3 this machine has (see Digest).
func newBLAKE3() hash.Hash {
	if blake3.Accelerated() {
		return blake3.New()
	}
	return zeebo.New()
}
