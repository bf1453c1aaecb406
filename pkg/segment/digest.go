package segment

import "github.com/zeebo/blake3"

// Digest computes the sealing digest of a segment whose END frame starts at
// end: BLAKE3-256 over the previous segment's digest, then file bytes
// [0, end+FrameHeaderSize): the header, every frame, and the END frame's
// header. The sealer hashes every byte the appenders write, on the same
// two cores, so the hash's speed per core bounds sustained throughput.
// github.com/zeebo/blake3 (single goroutine, AVX2; it has no AVX-512 path) does ~3 GB/s
// on one core here; lukechampine.com/blake3 does ~1.7 GB/s on one core and
// reaches ~3 GB/s only by spreading a large input over both, taking the
// appenders' core; SHA-256 with SHA-NI ~1.6 GB/s. BenchmarkDigest measures
// them side by side; TestDigestDefinition checks this one against the
// other module's one-shot BLAKE3.
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
	h    *blake3.Hasher
	n    int64 // bytes of the image hashed
}

// NewDigestStream starts the digest of the segment that follows the one
// whose digest is prev (zeros for the first segment).
func NewDigestStream(prev [DigestSize]byte) *DigestStream {
	d := &DigestStream{prev: prev, h: blake3.New()}
	d.h.Write(prev[:])
	return d
}

// Prev returns the previous digest the stream started from.
func (d *DigestStream) Prev() [DigestSize]byte { return d.prev }

// Hashed returns how many bytes of the image have been hashed.
func (d *DigestStream) Hashed() int64 { return d.n }

// Add hashes img[Hashed():upto]. The caller promises that those bytes
// never change again: they are the header and committed frames.
func (d *DigestStream) Add(img []byte, upto int64) {
	if upto > d.n {
		d.h.Write(img[d.n:upto])
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
