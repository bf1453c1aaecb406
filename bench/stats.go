package main

import (
	"fmt"
	"math"
	"slices"
)

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}

// spread is the full range of xs relative to its median, in percent: with
// five runs the range says more than a standard deviation would.
func spread(xs []float64) float64 {
	lo, hi := minMax(xs)
	m := median(xs)
	if m == 0 || math.IsNaN(m) {
		return math.NaN()
	}
	return 100 * (hi - lo) / m
}

// pairRatios divides run i of ours by run i of the peer. Runs alternate,
// so each pair saw the same machine state; the median of the pair ratios
// is the comparison, their range its uncertainty.
func pairRatios(ours, peer []float64) []float64 {
	n := min(len(ours), len(peer))
	r := make([]float64, 0, n)
	for i := range n {
		if peer[i] != 0 {
			r = append(r, ours[i]/peer[i])
		}
	}
	return r
}

// fmtRate prints a rate with an SI prefix (records/s, B/s).
func fmtRate(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1e9:
		return fmt.Sprintf("%.2f G%s", v/1e9, unit)
	case v >= 1e6:
		return fmt.Sprintf("%.2f M%s", v/1e6, unit)
	case v >= 1e3:
		return fmt.Sprintf("%.1f k%s", v/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

func fmtNs(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "–"
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtRatioRange is "1.23× (1.10–1.31)".
func fmtRatioRange(rs []float64) string {
	if len(rs) == 0 {
		return "–"
	}
	lo, hi := minMax(rs)
	return fmt.Sprintf("%s (%.2f–%.2f)", fmtRatio(median(rs)), lo, hi)
}
