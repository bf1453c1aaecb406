package writer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// The peer: the same records through a sync.Mutex-guarded 64 KiB
// bufio.Writer on an os.File. It is fast, but a crash loses up to 64 KiB
// of records that "succeeded"; auditseg's records are in the page cache
// when Append returns.

var benchSizes = []int{64, 256, 4096}
var benchGoroutines = []int{1, 2, 4, 8}

// runParallel splits b.N appends over g goroutines.
func runParallel(b *testing.B, g int, fn func(p []byte) error, size int) {
	b.Helper()
	rec := make([]byte, size)
	for i := range rec {
		rec[i] = byte('a' + i%26)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for k := range g {
		n := b.N / g
		if k < b.N%g {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := append([]byte(nil), rec...)
			for range n {
				if err := fn(p); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range benchSizes {
		for _, g := range benchGoroutines {
			b.Run(fmt.Sprintf("auditseg/%dB/g%d", size, g), func(b *testing.B) {
				w, err := Open(b.TempDir(), Options{Sync: SyncNone})
				if err != nil {
					b.Fatal(err)
				}
				runParallel(b, g, func(p []byte) error { _, err := w.Append(p); return err }, size)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
			b.Run(fmt.Sprintf("reserve/%dB/g%d", size, g), func(b *testing.B) {
				w, err := Open(b.TempDir(), Options{Sync: SyncNone})
				if err != nil {
					b.Fatal(err)
				}
				runParallel(b, g, func(p []byte) error {
					r, err := w.Reserve(len(p))
					if err != nil {
						return err
					}
					copy(r.Bytes(), p)
					return r.Commit()
				}, size)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			})
			b.Run(fmt.Sprintf("bufio-mutex/%dB/g%d", size, g), func(b *testing.B) {
				f, err := os.Create(filepath.Join(b.TempDir(), "peer.log"))
				if err != nil {
					b.Fatal(err)
				}
				var mu sync.Mutex
				bw := bufio.NewWriterSize(f, 64<<10)
				runParallel(b, g, func(p []byte) error {
					mu.Lock()
					_, err := bw.Write(p)
					mu.Unlock()
					return err
				}, size)
				if err := bw.Flush(); err != nil {
					b.Fatal(err)
				}
				f.Close()
			})
		}
	}
}

// BenchmarkAppendInSegment is the append path alone: one goroutine appends
// 64-byte records into a 256 MiB segment that was populated and touched,
// with the next one prepared too, before the timer starts, so no rotation,
// populate or seal runs while it is timed (a fresh writer, untimed, every
// segment's worth). BenchmarkAppend's auditseg/64B/g1 against this shows
// what the segments' page costs take from the rate on the machine at hand
// (docs/BENCHMARKS.md, "Page costs").
func BenchmarkAppendInSegment(b *testing.B) {
	const size, segSize = 64, 256 << 20
	p := make([]byte, size)
	perSeg := int((segment.DataLimit(segSize)-segment.HeaderSize)/segment.FrameSize(size)) - 1
	b.SetBytes(size)
	b.ReportAllocs()
	b.StopTimer()
	for done := 0; done < b.N; {
		w, err := Open(b.TempDir(), Options{Sync: SyncNone, SegmentSize: segSize})
		if err != nil {
			b.Fatal(err)
		}
		used := 0
		for ; w.cur.Load().tail.Load() <= yieldStride; used++ { // the first boundary asks for the next segment
			if _, err := w.Append(p); err != nil {
				b.Fatal(err)
			}
		}
		for deadline := time.Now().Add(time.Minute); w.cur.Load().next.Load() == nil; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the next segment was not prepared within a minute")
			}
		}
		n := min(b.N-done, perSeg-used)
		b.StartTimer()
		for range n {
			if _, err := w.Append(p); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if got := w.cur.Load().seq; got != 1 {
			b.Fatalf("rotated to segment %d while timed", got)
		}
		done += n
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpenFirstSegment times Open of a new log under the default
// SyncInterval and the first 8 MiB of 100-byte appends: what a service
// pays before its first records are in. (Close is outside the timer.)
func BenchmarkOpenFirstSegment(b *testing.B) {
	p := make([]byte, 100)
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		w, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for range (8 << 20) / 128 {
			if _, err := w.Append(p); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkFirstSyncAfterReopen times the first Sync after Open of a log
// of many small sealed segments (64 KiB, written and made durable by a
// SyncNone writer that called Sync before Close). That Sync opens and
// fsyncs every sealed segment file recovery found (lazySealed.inherited
// in sync.go): nothing on disk tells which of them an earlier writer
// left unflushed. Open and Close are outside the timer; ns/segment is
// the time per segment file.
func BenchmarkFirstSyncAfterReopen(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("segments=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{SegmentSize: 64 << 10, Sync: SyncNone}
			w, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			p := make([]byte, 1000)
			for w.cur.Load().seq <= uint64(n) {
				if _, err := w.Append(p); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				b.StopTimer()
				w, err := Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := w.Sync(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/segment")
		})
	}
}
