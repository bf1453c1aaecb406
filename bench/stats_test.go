package main

import (
	"math"
	"testing"
)

func TestMedianAndSpread(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("odd median %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even median %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("empty median should be NaN")
	}
	if s := spread([]float64{90, 100, 110}); math.Abs(s-20) > 1e-9 {
		t.Errorf("spread %v, want 20", s)
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 {
		t.Error("median reordered its argument")
	}
}

func TestPairRatios(t *testing.T) {
	r := pairRatios([]float64{2, 4, 6}, []float64{1, 2, 0})
	if len(r) != 2 || r[0] != 2 || r[1] != 2 {
		t.Fatalf("ratios %v (a zero peer run must be left out)", r)
	}
	if got := fmtRatioRange([]float64{1, 2, 3}); got != "2.00× (1.00–3.00)" {
		t.Errorf("fmtRatioRange: %q", got)
	}
}

func TestFormatters(t *testing.T) {
	cases := map[string]string{
		fmtRate(12.5e6, "rec/s"): "12.50 Mrec/s",
		fmtRate(1500, "B/s"):     "1.5 kB/s",
		fmtBytes(3 << 20):        "3.0 MiB",
		fmtNs(1500):              "1.5 µs",
		fmtNs(2.5e6):             "2.50 ms",
		fmtRatio(math.NaN()):     "–",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
