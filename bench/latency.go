package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// latConfig: one goroutine appends size-byte records at rate per second,
// paced by spinning on the clock, for enough records to fill rotations
// segments of segSize bytes.
type latConfig struct {
	rate      float64
	size      int
	segSize   int64
	rotations int
	runs      int
	work      string
}

// latSide is one implementation's latency over all runs: service is the
// time inside the call; corrected is measured from the record's scheduled
// start, so a stall also charges the records queued behind it (the
// coordinated-omission correction of HdrHistogram).
type latSide struct {
	service, corrected *hist
	runP999            []float64 // per-run p99.9 of service time, for the spread
	behind             time.Duration
	segments           []int // segment files per run (auditseg only)
}

type latResult struct {
	cfg         latConfig
	records     int
	ours, peer  latSide
	clockCost   *hist
	achievedHz  []float64
	description string
}

func (c latConfig) records() int {
	frames := (c.segSize - 64 - 128) / int64(segment.FrameSize(c.size))
	return int(frames) * (c.rotations + 1)
}

func runLatency(cfg latConfig, logf func(string, ...any)) (*latResult, error) {
	res := &latResult{cfg: cfg, records: cfg.records(), clockCost: newHist()}
	res.ours = latSide{service: newHist(), corrected: newHist()}
	res.peer = latSide{service: newHist(), corrected: newHist()}
	// Back-to-back clock readings: the floor of every figure below.
	for range 100000 {
		t0 := time.Now()
		res.clockCost.Record(int64(time.Since(t0)))
	}
	sides := []struct {
		side *latSide
		open func(dir string) (func([]byte) error, func() error, error)
	}{
		{&res.ours, func(dir string) (func([]byte) error, func() error, error) {
			w, err := writer.Open(dir, writer.Options{SegmentSize: cfg.segSize, Sync: writer.SyncNone})
			if err != nil {
				return nil, nil, err
			}
			return func(p []byte) error { _, err := w.Append(p); return err }, w.Close, nil
		}},
		{&res.peer, func(dir string) (func([]byte) error, func() error, error) {
			a, err := openBufio(dir)
			return a.appendFn, a.closeFn, err
		}},
	}
	// Warm-up: one discarded run of each.
	for round := -1; round < cfg.runs; round++ {
		for i := range sides {
			s := sides[(i+max(round, 0))%len(sides)]
			dir, err := os.MkdirTemp(cfg.work, "lat-")
			if err != nil {
				return nil, err
			}
			fn, closeFn, err := s.open(dir)
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			svc, cor := newHist(), newHist()
			behind, hz, err := pacedRun(fn, cfg, res.records, svc, cor)
			err = errors.Join(err, closeFn())
			segs := countSegments(dir)
			os.RemoveAll(dir)
			if err != nil {
				return nil, err
			}
			if round < 0 {
				continue
			}
			s.side.service.Merge(svc)
			s.side.corrected.Merge(cor)
			s.side.runP999 = append(s.side.runP999, float64(svc.Quantile(0.999)))
			s.side.behind = max(s.side.behind, behind)
			if s.side == &res.ours {
				s.side.segments = append(s.side.segments, segs)
				res.achievedHz = append(res.achievedHz, hz)
			}
		}
	}
	logf("latency: auditseg p99.9 %s max %s; bufio p99.9 %s max %s",
		fmtNs(float64(res.ours.service.Quantile(0.999))), fmtNs(float64(res.ours.service.Max())),
		fmtNs(float64(res.peer.service.Quantile(0.999))), fmtNs(float64(res.peer.service.Max())))
	return res, nil
}

// pacedRun appends n records at cfg.rate, spinning until each record's
// scheduled time. It returns how far behind schedule the loop fell at
// worst and the rate achieved.
func pacedRun(fn func([]byte) error, cfg latConfig, n int, svc, cor *hist) (time.Duration, float64, error) {
	p := make([]byte, cfg.size)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	runtime.GC()
	interval := time.Duration(float64(time.Second) / cfg.rate)
	var behind time.Duration
	start := time.Now()
	for i := range n {
		sched := start.Add(time.Duration(i) * interval)
		t0 := time.Now()
		for t0.Before(sched) {
			t0 = time.Now()
		}
		if err := fn(p); err != nil {
			return 0, 0, fmt.Errorf("record %d: %w", i, err)
		}
		t1 := time.Now()
		svc.Record(int64(t1.Sub(t0)))
		cor.Record(int64(t1.Sub(sched)))
		behind = max(behind, t0.Sub(sched))
	}
	return behind, float64(n) / time.Since(start).Seconds(), nil
}

func countSegments(dir string) int {
	l, err := segment.List(dir)
	if err != nil {
		return 0
	}
	return len(l.Segments)
}

// histRow is "p50 | p99 | p99.9 | max" of h.
func histRow(h *hist) string {
	return fmt.Sprintf("%s | %s | %s | %s", fmtNs(float64(h.Quantile(0.5))), fmtNs(float64(h.Quantile(0.99))),
		fmtNs(float64(h.Quantile(0.999))), fmtNs(float64(h.Max())))
}
