package main

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/writer"
	"github.com/tidwall/wal"
)

// An appender is one implementation under test, opened on a fresh
// directory for every run. appendFn is called from many goroutines.
type appender struct {
	appendFn func(p []byte) error
	closeFn  func() error
}

type libImpl struct {
	key, name, note string
	open            func(dir string) (appender, error)
}

// peerBuf is the size of the buffered peers' buffer (bufio and the wal
// batch), so both lose at most this much on a crash.
const peerBuf = 64 << 10

func libImpls() []libImpl {
	return []libImpl{
		{"append", "auditseg Append", "records in the page cache (mapped file) when Append returns; SyncNone", openAuditseg(false)},
		{"reserve", "auditseg Reserve+Commit", "the same, filling the reservation in place", openAuditseg(true)},
		{"bufio", "mutex + 64 KiB bufio.Writer", "loses up to 64 KiB of returned records on a process crash", openBufio},
		{"write2", "mutex + write(2) per record", "same crash guarantee as auditseg: data in the page cache at return", openWrite2},
		{"wal", "tidwall/wal NoSync, WriteBatch", "records gathered under a mutex into a wal.Batch, written at 64 KiB; loses up to 64 KiB on a crash", openWal},
	}
}

func openAuditseg(reserve bool) func(dir string) (appender, error) {
	return func(dir string) (appender, error) {
		w, err := writer.Open(dir, writer.Options{Sync: writer.SyncNone})
		if err != nil {
			return appender{}, err
		}
		fn := func(p []byte) error { _, err := w.Append(p); return err }
		if reserve {
			fn = func(p []byte) error {
				r, err := w.Reserve(len(p))
				if err != nil {
					return err
				}
				copy(r.Bytes(), p)
				return r.Commit()
			}
		}
		return appender{fn, w.Close}, nil
	}
}

func openBufio(dir string) (appender, error) {
	f, err := os.Create(filepath.Join(dir, "peer.log"))
	if err != nil {
		return appender{}, err
	}
	var mu sync.Mutex
	bw := bufio.NewWriterSize(f, peerBuf)
	return appender{
		func(p []byte) error {
			mu.Lock()
			_, err := bw.Write(p)
			mu.Unlock()
			return err
		},
		func() error { return errors.Join(bw.Flush(), f.Close()) },
	}, nil
}

func openWrite2(dir string) (appender, error) {
	f, err := os.Create(filepath.Join(dir, "peer.log"))
	if err != nil {
		return appender{}, err
	}
	var mu sync.Mutex
	return appender{
		func(p []byte) error {
			mu.Lock()
			_, err := f.Write(p)
			mu.Unlock()
			return err
		},
		f.Close,
	}, nil
}

// openWal uses tidwall/wal's batch API: indexes must be consecutive, so
// they are assigned under one mutex, which also guards the shared batch.
func openWal(dir string) (appender, error) {
	l, err := wal.Open(filepath.Join(dir, "wal"), &wal.Options{NoSync: true, SegmentSize: 64 << 20, LogFormat: wal.Binary})
	if err != nil {
		return appender{}, err
	}
	var (
		mu      sync.Mutex
		batch   wal.Batch
		next    uint64 = 1
		pending int
	)
	flush := func() error {
		if pending == 0 {
			return nil
		}
		err := l.WriteBatch(&batch)
		batch.Clear()
		pending = 0
		return err
	}
	return appender{
		func(p []byte) error {
			mu.Lock()
			defer mu.Unlock()
			batch.Write(next, p)
			next++
			pending += len(p)
			if pending >= peerBuf {
				return flush()
			}
			return nil
		},
		func() error {
			mu.Lock()
			defer mu.Unlock()
			return errors.Join(flush(), l.Close())
		},
	}, nil
}

// libRun appends count records of size bytes from g goroutines into a
// fresh directory and returns how many it appended and the elapsed time of
// the appends alone (opening and closing are outside the timing). With
// count 0 it appends until the deadline d instead, checking a flag every
// 256 records: that is the warm-up run, which also measures the rate the
// fixed counts of the measured runs are computed from.
func libRun(im libImpl, work string, size, g, count int, d time.Duration) (int, time.Duration, error) {
	dir, err := os.MkdirTemp(work, "lib-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	a, err := im.open(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: open: %w", im.name, err)
	}
	var (
		wg     sync.WaitGroup
		ready  sync.WaitGroup
		start  = make(chan struct{})
		stop   atomic.Bool
		done   atomic.Int64
		failed atomic.Pointer[error]
	)
	for k := range g {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, size)
			for i := range p {
				p[i] = byte('a' + (i+k)%26)
			}
			ready.Done()
			<-start
			if count > 0 {
				for range count / g {
					if err := a.appendFn(p); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
				done.Add(int64(count / g))
				return
			}
			for n := 0; ; n += 256 {
				for range 256 {
					if err := a.appendFn(p); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
				if stop.Load() {
					done.Add(int64(n + 256))
					return
				}
			}
		}()
	}
	ready.Wait()
	runtime.GC()
	if count == 0 {
		time.AfterFunc(d, func() { stop.Store(true) })
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t0)
	cerr := a.closeFn()
	if e := failed.Load(); e != nil {
		return 0, 0, fmt.Errorf("%s: append: %w", im.name, *e)
	}
	if cerr != nil {
		return 0, 0, fmt.Errorf("%s: close: %w", im.name, cerr)
	}
	return int(done.Load()), el, nil
}

// libCell is one record size and goroutine count: every implementation's
// rate (records/s) in each measured run, run i of every implementation in
// the same round.
type libCell struct {
	size, g int
	rates   map[string][]float64
	first   map[string]float64 // the discarded warm-up iteration
	counts  map[string]int
}

type libConfig struct {
	sizes, goroutines []int
	target            time.Duration
	runs              int
	work              string
	only              map[string]bool // implementation keys to run (nil: all)
	// sustain, if set, makes every run time-bounded, this long (the
	// warm-up a fifth of it), instead of a fixed count taking target.
	sustain time.Duration
}

// runLibrary measures every cell. For each implementation a discarded
// warm-up iteration of half the target length pre-warms memory (Go heap,
// page cache pages, the writer's first segments) and measures its rate;
// Append and the bufio peer, the pair the bars judge, run the same record
// count, the one that takes target at the geometric mean of their rates,
// so that both write the same bytes (this VM gets slower as a run takes
// more fresh memory: a count fixed per implementation measured the one
// with the faster warm-up over a longer, slower run); the reference rows
// take the count of their own rate. Then cfg.runs rounds run every
// implementation once each, in a balanced order (balancedOrder), each
// after a sync(2) so that no run's write-back lands in the next one.
func runLibrary(cfg libConfig, logf func(string, ...any)) ([]libCell, error) {
	impls := libImpls()
	var cells []libCell
	for _, size := range cfg.sizes {
		for _, g := range cfg.goroutines {
			c := libCell{size: size, g: g, rates: map[string][]float64{}, first: map[string]float64{}, counts: map[string]int{}}
			var active []libImpl
			for _, im := range impls {
				if cfg.only != nil && !cfg.only[im.key] {
					continue
				}
				active = append(active, im)
				warm := cfg.target / 2
				if cfg.sustain > 0 {
					warm = cfg.sustain / 5
				}
				n, el, err := libRun(im, cfg.work, size, g, 0, warm)
				if err != nil {
					return nil, err
				}
				c.first[im.key] = float64(n) / el.Seconds()
			}
			// The pair the bars judge shares one count; the other
			// implementations (reference rows) take their own.
			pair := map[string]float64{}
			for _, k := range []string{"append", "bufio"} {
				if r, ok := c.first[k]; ok {
					pair[k] = r
				}
			}
			for _, im := range active {
				if _, ok := pair[im.key]; ok {
					c.counts[im.key] = commonCount(pair, cfg.target, g, size)
				} else {
					c.counts[im.key] = commonCount(map[string]float64{im.key: c.first[im.key]}, cfg.target, g, size)
				}
			}
			for r := range cfg.runs {
				for _, i := range balancedOrder(len(active), r) {
					im := active[i]
					settle(false)
					count, d := c.counts[im.key], time.Duration(0)
					if cfg.sustain > 0 {
						count, d = 0, cfg.sustain
					}
					n, el, err := libRun(im, cfg.work, size, g, count, d)
					if err != nil {
						return nil, err
					}
					c.rates[im.key] = append(c.rates[im.key], float64(n)/el.Seconds())
				}
			}
			kind := "library"
			if cfg.sustain > 0 {
				kind = "sustained"
			}
			logf("%s %4d B g%d: %s", kind, size, g, cellSummary(c, active))
			cells = append(cells, c)
		}
	}
	return cells, nil
}

// commonCount is the record count that takes about target at the
// geometric mean of the warm-up rates (records/s), a multiple of g,
// bounded so that a mistimed probe cannot fill the disk or the page cache
// (6 GiB a run).
func commonCount(rates map[string]float64, target time.Duration, g, size int) int {
	logSum, n := 0.0, 0
	for _, r := range rates {
		if r > 0 {
			logSum, n = logSum+math.Log(r), n+1
		}
	}
	rate := 1e6
	if n > 0 {
		rate = math.Exp(logSum / float64(n))
	}
	c := int(rate * target.Seconds())
	c = min(max(c, 1000, g), (6<<30)/max(size, 1))
	return (c + g - 1) / g * g
}

func cellSummary(c libCell, active []libImpl) string {
	s := ""
	for _, im := range active {
		s += fmt.Sprintf(" %s=%s", im.key, fmtRate(median(c.rates[im.key]), "rec/s"))
	}
	return s
}
