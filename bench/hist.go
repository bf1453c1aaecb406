package main

import (
	"math"
	"math/bits"
)

// hist is a log-linear histogram of non-negative integers (nanoseconds),
// in the style of HdrHistogram: every power-of-two range is split into
// histHalf equal sub-buckets, so a recorded value is known to within
// 1/histHalf (1.6 %) of itself at any magnitude, in fixed memory, with a
// constant-time Record that does not allocate (it runs between two clock
// readings on the measured path).
type hist struct {
	counts [64 * histHalf]uint64
	n      uint64
	max    int64
	min    int64
	sum    float64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // sub-buckets in the first range
	histHalf    = histSub / 2      // sub-buckets in every later range
)

func newHist() *hist { return &hist{min: math.MaxInt64} }

func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	shift := bits.Len64(u) - histSubBits
	if shift <= 0 {
		return int(u)
	}
	return shift*histHalf + int(u>>uint(shift))
}

// histUpper is the largest value that lands in bucket i, which is what a
// percentile reports (HdrHistogram's "highest equivalent value"): it never
// understates a latency.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := i/histHalf - 1
	sub := i - shift*histHalf
	return int64((uint64(sub)+1)<<uint(shift)) - 1
}

func (h *hist) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
	if v > h.max {
		h.max = v
	}
	if v < h.min {
		h.min = v
	}
}

func (h *hist) Merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
	h.min = min(h.min, o.min)
}

// Quantile returns the value below or at which a fraction q of the
// recorded values lie; the maximum is exact.
func (h *hist) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

func (h *hist) Count() uint64 { return h.n }
func (h *hist) Max() int64    { return h.max }
func (h *hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}
