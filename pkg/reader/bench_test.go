package reader_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
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
			err = r.Err() // before Close, after which it is ErrClosed
			r.Close()
			if got != n || err != nil {
				b.Fatalf("read %d of %d records: %v", got, n, err)
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

// BenchmarkFollowLatency measures the time from Append returning in a
// writer to the record coming out of a following reader's Wait/Next, with
// records committed every 100µs (b.N records). The writer is in the same
// process but shares nothing with the reader except the files: the reader
// polls the commit word through its own mapping, exactly as a follower in
// another process does. Reported: p50-µs and p99-µs.
func BenchmarkFollowLatency(b *testing.B) {
	dir := b.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20, Sync: writer.SyncNone})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	r, err := reader.Open(dir, reader.Options{Follow: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan time.Time, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		for range r.All(ctx) {
			got <- time.Now()
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	p := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		time.Sleep(100 * time.Microsecond)
		if _, err := w.Append(p); err != nil {
			b.Fatal(err)
		}
		sent := time.Now()
		lat = append(lat, (<-got).Sub(sent))
	}
	b.StopTimer()
	cancel()
	<-done
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkFollowIdle measures the CPU a follower uses while no record
// arrives: it follows an idle log for 2 s per iteration (after reaching the
// idle poll interval) and reports CPU milliseconds per idle second of the
// whole process (user + system). The log's lock is held as a live writer
// holds it, but by no goroutine, so the figure is the follower's alone.
func BenchmarkFollowIdle(b *testing.B) {
	dir := b.TempDir()
	l := newLiveLog(b, dir, segSize)
	defer l.close()
	l.append([]byte("x"))
	var total, idle time.Duration
	for range b.N {
		r, err := reader.Open(dir, reader.Options{Follow: true})
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		start := make(chan time.Duration, 1)
		go func() { time.Sleep(500 * time.Millisecond); start <- processCPU(b) }()
		_ = r.Wait(ctx)
		cancel()
		total += processCPU(b) - <-start
		idle += 2 * time.Second
		r.Close()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/idle.Seconds(), "cpu-ms/idle-s")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
