package archive_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

const benchSegSize = 8 << 20

// BenchmarkRun measures a whole run (compress, fsync, verify, rename,
// remove) over five sealed 8 MiB segments of JSON-like audit records, per
// encoder level and job count. Bytes are segment bytes in.
func BenchmarkRun(b *testing.B) {
	pristine := newFixture(b, 6, benchSegSize)
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		for _, jobs := range []int{1, 2} {
			b.Run(fmt.Sprintf("level=%s/jobs=%d", level, jobs), func(b *testing.B) {
				b.SetBytes(5 * benchSegSize)
				var out int64
				for b.Loop() {
					b.StopTimer()
					fx := pristine.clone(b)
					b.StartTimer()
					res, err := archive.Run(context.Background(), fx.dir, archive.Options{Level: level, Jobs: jobs})
					if err == nil {
						err = res.Err()
					}
					if err != nil {
						b.Fatal(err)
					}
					out = res.BytesOut
				}
				b.ReportMetric(float64(5*benchSegSize)/float64(out), "ratio")
			})
		}
	}
}

// BenchmarkReadArchive measures opening an archived segment, which is what
// readers pay per archived segment.
func BenchmarkReadArchive(b *testing.B) {
	fx := newFixture(b, 2, benchSegSize)
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if err != nil || res.Done != 1 {
		b.Fatal(err, res.Done)
	}
	b.SetBytes(benchSegSize)
	for b.Loop() {
		im, err := segment.OpenImage(fx.zst(1))
		if err != nil {
			b.Fatal(err)
		}
		im.Close()
	}
}
