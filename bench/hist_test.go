package main

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistBucketsCoverEveryValue(t *testing.T) {
	for _, v := range []int64{0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		i := histIndex(v)
		if up := histUpper(i); up < v {
			t.Errorf("value %d: bucket %d upper bound %d is below it", v, i, up)
		}
		if i > 0 {
			if lowUp := histUpper(i - 1); lowUp >= v {
				t.Errorf("value %d: previous bucket %d already reaches %d", v, i-1, lowUp)
			}
		}
	}
	// Buckets are contiguous: each one's range starts right after the last.
	for i := 1; i < 40*histHalf; i++ {
		if histIndex(histUpper(i-1)+1) != i {
			t.Fatalf("bucket %d does not start at %d", i, histUpper(i-1)+1)
		}
	}
}

func TestHistQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := newHist()
	vals := make([]int64, 100000)
	for i := range vals {
		v := int64(r.ExpFloat64() * 5000)
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/histHalf)+1 {
			t.Errorf("q%.3f: got %d, exact %d (allowed up to %.1f%% above)", q, got, exact, 100.0/histHalf)
		}
	}
	if h.Quantile(1) != vals[len(vals)-1] || h.Max() != vals[len(vals)-1] {
		t.Errorf("max: got %d/%d, want %d", h.Quantile(1), h.Max(), vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistMerge(t *testing.T) {
	a, b := newHist(), newHist()
	a.Record(10)
	b.Record(1000)
	b.Record(5)
	a.Merge(b)
	if a.Count() != 3 || a.Max() != 1000 || a.Quantile(0.01) != 5 {
		t.Fatalf("merged: n=%d max=%d p1=%d", a.Count(), a.Max(), a.Quantile(0.01))
	}
}
