package reader_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// benchLog writes a log of 100-byte records in sealed 16 MiB segments
// totalling about total bytes, and returns the number of records.
func benchLog(b *testing.B, dir string, total int64) int {
	const size = 16 << 20
	p := make([]byte, 100)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	n := 0
	var prev [segment.DigestSize]byte
	for seq := uint64(1); int64(seq-1)*size < total; seq++ {
		sb := newSegSize(seq, size)
		for sb.fits(len(p)) {
			sb.add(baseTS+int64(n), p)
			n++
		}
		prev = sb.seal(b, prev)
		sb.write(b, dir)
	}
	return n
}

// BenchmarkReplay reads every record of a 256 MiB log of 100-byte records
// (the `tail -n +1` path) and, as the baseline the replay bar is measured
// against, reads the same segment files to io.Discard as `cat` would.
// Bytes/s are file bytes in both.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	n := benchLog(b, dir, 256<<20)
	files, _ := filepath.Glob(filepath.Join(dir, "*"+segment.SegmentExt))
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.Run("reader", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := reader.Open(dir, reader.Options{})
			if err != nil {
				b.Fatal(err)
			}
			got, sum := 0, 0
			for r.Next() {
				sum += len(r.Record().Payload)
				got++
			}
			r.Close()
			if got != n || r.Err() != nil {
				b.Fatalf("read %d of %d records: %v", got, n, r.Err())
			}
		}
	})
	b.Run("cat", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 128<<10)
		for b.Loop() {
			for _, name := range files {
				f, err := os.Open(name)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		}
	})
}
