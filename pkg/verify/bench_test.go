package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	compress "github.com/auditseg/auditseg/pkg/archive"
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

// BenchmarkCheckImage is the check of one sealed 16 MiB segment of
// 100-byte records already in memory, read through a window as verify
// reads a file's page cache (window.go): the copy, the frame walk (every
// CRC, every record's padding and time) and the digest, so that the
// per-record cost shows.
func BenchmarkCheckImage(b *testing.B) {
	const size = 16 << 20
	dir := b.TempDir()
	img := segment.NewImage(1, size, baseCreated)
	rec := make([]byte, 100)
	off := int64(segment.HeaderSize)
	for i := 0; off+segment.FrameSize(len(rec)) <= segment.DataLimit(size); i++ {
		copy(rec, fmt.Sprintf("record %d", i))
		off = segment.PutFrame(img, 1, off, segment.TypeData, baseCreated+int64(i), rec)
	}
	segment.PutEnd(img, 1, off, baseCreated+second)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, segment.FileName(1))
	im := &segment.Image{Path: path, Data: img, FileSize: size}
	im.Header, im.HeaderErr = segment.DecodeHeader(img)
	buf := make([]byte, windowSize)
	o := Options{}.withDefaults()
	b.SetBytes(size)
	for b.Loop() {
		r := newResult(path, &o)
		checkImage(im, r, &o, &window{src: bytes.NewReader(img), buf: buf})
		if r.found.total() != 0 || r.rep.State != StateSealed || r.rep.Records == 0 {
			b.Fatalf("%+v %v", r.rep, r.found.list)
		}
	}
}

// BenchmarkVerifyOneSegment is a full verification of a log of a single
// 64 MiB segment with one job and with two: with a core to spare, the
// digest is hashed on it (digestAhead) while the job walks the frames.
func BenchmarkVerifyOneSegment(b *testing.B) {
	dir, total := benchLog(b, 1, 64<<20)
	for _, jobs := range []int{1, 2} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				rep, err := Dir(dir, Options{Workers: jobs})
				if err != nil || rep.ExitCode(true) != ExitClean {
					b.Fatalf("%v %+v", err, rep.Totals)
				}
			}
		})
	}
}

// BenchmarkQuickSegments is verify --quick of logs of many sealed
// segments, from the page cache, built once outside the timed loop: 2,000
// of 64 KiB and 250 of 1 MiB, where what counts is the cost of a segment
// opened, not of its bytes. A full check of the 64 KiB log is there to
// compare with: --quick was the slower of the two.
func BenchmarkQuickSegments(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
		size int64
		full bool
	}{{"64KiB", 2000, 64 << 10, true}, {"1MiB", 250, 1 << 20, false}} {
		b.Run(c.name, func(b *testing.B) {
			dir, _ := benchLog(b, c.n, c.size)
			modes := []bool{true}
			if c.full {
				modes = append(modes, false)
			}
			for _, quick := range modes {
				b.Run(map[bool]string{true: "quick", false: "full"}[quick], func(b *testing.B) {
					for b.Loop() {
						rep, err := Dir(dir, Options{Quick: quick})
						if err != nil || rep.ExitCode(true) != ExitClean || rep.Totals.Sealed != c.n {
							b.Fatalf("%v %+v", err, rep.Totals)
						}
					}
				})
			}
		})
	}
}

// BenchmarkQuickArchives is verify --quick, and a full check to compare
// with, of a log whose sealed segments compress-finished archived: 64 of
// 1 MiB, from the page cache, built once outside the timed loop. --quick
// decompressed every archive, and took longer than the full check.
func BenchmarkQuickArchives(b *testing.B) {
	const n = 64
	dir, _ := benchLog(b, n, 1<<20)
	res, err := compress.Run(context.Background(), dir, compress.Options{})
	if err != nil || res.Failed != 0 {
		b.Fatalf("compress-finished: %v, %+v", err, res)
	}
	for _, quick := range []bool{true, false} {
		b.Run(map[bool]string{true: "quick", false: "full"}[quick], func(b *testing.B) {
			for b.Loop() {
				rep, err := Dir(dir, Options{Quick: quick})
				if err != nil || rep.ExitCode(true) != ExitClean || rep.Totals.Sealed != n {
					b.Fatalf("%v %+v", err, rep.Totals)
				}
			}
		})
	}
}
