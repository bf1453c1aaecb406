package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// benchLog writes n sealed segments of size bytes full of 200-byte records.
func benchLog(b *testing.B, n int, size int64) (string, int64) {
	dir := b.TempDir()
	var prev [segment.DigestSize]byte
	rec := make([]byte, 200)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		img := segment.NewImage(seq, size, baseCreated)
		off := int64(segment.HeaderSize)
		for i := 0; off+segment.FrameSize(len(rec)) <= segment.DataLimit(size); i++ {
			copy(rec, fmt.Sprintf("record %d of segment %d", i, seq))
			off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), rec)
		}
		segment.PutEnd(img, seq, off, baseCreated+second)
		f, err := segment.Seal(img, prev, 0, baseCreated+second)
		if err != nil {
			b.Fatal(err)
		}
		prev = f.Digest
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640); err != nil {
			b.Fatal(err)
		}
	}
	return dir, int64(n) * size
}

// BenchmarkVerify is a full verification (every CRC, every digest) of
// 8 MiB of 1 MiB segments, from the page cache.
func BenchmarkVerify(b *testing.B) {
	for _, quick := range []bool{false, true} {
		b.Run(fmt.Sprintf("quick=%v", quick), func(b *testing.B) {
			dir, total := benchLog(b, 8, 1<<20)
			b.SetBytes(total)
			b.ResetTimer()
			for range b.N {
				rep, err := Dir(dir, Options{Quick: quick})
				if err != nil || rep.ExitCode(true) != ExitClean {
					b.Fatalf("%v %+v", err, rep.Totals)
				}
			}
		})
	}
}
