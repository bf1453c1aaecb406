package blake3

import (
	"hash"
	"testing"

	ref "github.com/zeebo/blake3"
)

var benchData = func() []byte {
	p := make([]byte, 64<<20)
	for i := range p {
		p[i] = byte(i*131 + i>>11)
	}
	return p
}()

var sink [Size]byte

type impl struct {
	name  string
	sum   func([]byte) [Size]byte
	newer func() hash.Hash
}

var impls = []impl{
	{"ours", Sum256, func() hash.Hash { return New() }},
	{"zeebo", ref.Sum256, func() hash.Hash { return ref.New() }},
}

// writeAll writes prefix and then p in pieces of size piece (all of p at
// once when piece is 0), as the product does with a segment file behind
// the previous segment's digest.
func writeAll(h hash.Hash, prefix, p []byte, piece int) {
	if len(prefix) > 0 {
		h.Write(prefix)
	}
	if piece == 0 {
		piece = len(p)
	}
	for len(p) > 0 {
		n := min(piece, len(p))
		h.Write(p[:n])
		p = p[n:]
	}
}

func BenchmarkSum(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"64MiB", 64 << 20}} {
		for _, im := range impls {
			b.Run(size.name+"/"+im.name, func(b *testing.B) {
				p := benchData[:size.n]
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					sink = im.sum(p)
				}
			})
		}
	}
	prefix := make([]byte, 32)
	for _, c := range []struct {
		name   string
		prefix []byte
		piece  int
	}{
		{"stream256KiB", nil, 256 << 10},
		{"prefix32+64MiB", prefix, 0},
		{"prefix32+stream256KiB", prefix, 256 << 10},
		{"prefix32+stream32KiB", prefix, 32 << 10},
	} {
		for _, im := range impls {
			b.Run(c.name+"/"+im.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.prefix) + len(benchData)))
				var out []byte
				for b.Loop() {
					h := im.newer()
					writeAll(h, c.prefix, benchData, c.piece)
					out = h.Sum(out[:0])
				}
			})
		}
	}
}
