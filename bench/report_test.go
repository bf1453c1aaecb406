package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeResults has one of everything: measured, missed, unavailable, failed.
func fakeResults() *results {
	lat := &latResult{cfg: latConfig{rate: 1e6, size: 64, segSize: 4 << 20, rotations: 10}, records: 1000, clockCost: newHist()}
	lat.ours = latSide{service: newHist(), corrected: newHist(), runP999: []float64{900, 1100}, segments: []int{12, 12}}
	lat.peer = latSide{service: newHist(), corrected: newHist(), runP999: []float64{20000}}
	for i := range 1000 {
		lat.ours.service.Record(int64(100 + i))
		lat.ours.corrected.Record(int64(150 + 2*i))
		lat.peer.service.Record(int64(50 + i))
	}
	cell := func(size, g int, ours, peer float64) libCell {
		return libCell{size: size, g: g,
			rates: map[string][]float64{"append": {ours, ours * 1.1, ours * 0.9}, "bufio": {peer, peer, peer}},
			first: map[string]float64{"append": ours / 2}, counts: map[string]int{}}
	}
	return &results{
		m: machine{CPU: "test CPU", Cores: 2, Date: time.Unix(0, 0)}, runs: 3, skipped: map[string]bool{},
		lib: []libCell{cell(64, 1, 12e6, 10e6), cell(64, 8, 5e6, 10e6), cell(4096, 1, 1e6, 1e6)},
		lat: lat,
		cli: []*cliCase{
			{title: "write", ours: timing{name: "auditseg write", secs: []float64{2, 2.2}, cpu: []float64{1, 1}}, peer: timing{name: "cat > file", secs: []float64{1, 1}, cpu: []float64{0.5, 0.5}}, bytes: 1 << 30},
			{title: "tail", ours: timing{name: "tail -n +1"}, unavailable: "not available yet: this build has no `auditseg tail`"},
			{title: "verify", ours: timing{name: "verify"}, err: errors.New("verify exited 1\nsecond line")},
		},
		mem:    []*memCase{{title: "write", small: 100, large: 110, smallLog: 1, largeLog: 4}, {title: "tail", unavailable: "not available yet: no tail"}},
		follow: &followResult{unavailable: "not available yet: no tail", lat: newHist()},
	}
}

func TestReportShowsEveryCaseAndJudgesBars(t *testing.T) {
	res := fakeResults()
	res.bars = evalBars(res)
	doc := renderReport(res, nil, "bench-append.png")
	for _, want := range []string{
		"| #2 | Append 64 B g1 ≥ 1.2× bufio peer | 1.20× (1.08–1.32) | PASS |",
		"| #2 | Append 64 B g8 ≥ 1.0× bufio peer | 0.50× (0.45–0.55) | **MISS** |",
		"Append 64 B g2 ≥ 1.0× bufio peer | – | n/a: cell not measured",
		"`write` wall time ≤ 1.4× `cat > file` | 2.10× (2.00–2.20) | **MISS** |",
		"| #2 | Append 64 B: g8 ≥ 0.7× g1 (no collapse) | 0.42× (ratio of medians) | **MISS** |",
		"n/a: not available yet: this build has no `auditseg tail`",
		"error: verify exited 1",
		"Append p99.9 at 64 B, paced, across rotations < 10 µs (from each record's scheduled start) | 2.1 µs (in the call: 1.1 µs, max 1.1 µs) | PASS",
		"go test -run '^$' -bench '^BenchmarkAppend$/^auditseg$/^64B$/^g8$'",
		"2.100 s wall, 1.000 s CPU (user+sys)",
		"![throughput against goroutines](bench-append.png)",
		"<!-- hand-written:methodology:begin",
		"<!-- hand-written:analysis:end -->",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc lacks %q", want)
		}
	}
	if strings.Contains(doc, "NaN") {
		t.Error("doc prints NaN somewhere")
	}
}

func TestHandWrittenBlocksSurviveRegeneration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "BENCHMARKS.md")
	res := fakeResults()
	res.bars = evalBars(res)
	doc := renderReport(res, nil, "")
	edited := strings.Replace(doc, "(Hand-written: after a full run", "The 4 KiB case is limited by page faults.\n(Hand-written: after a full run", 1)
	if edited == doc {
		t.Fatal("default analysis text not found")
	}
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks := handBlocks(filepath.Join(dir, "missing.md"), path)
	again := renderReport(res, blocks, "")
	if !strings.Contains(again, "The 4 KiB case is limited by page faults.") {
		t.Error("the edited analysis block was not kept")
	}
	if strings.Count(again, "## How these figures are made") != 1 {
		t.Error("the methodology block is missing or doubled")
	}
	if again != edited {
		t.Error("regenerating from the same results should reproduce the edited doc exactly")
	}
}

func TestCommonCount(t *testing.T) {
	// The geometric mean of 1e6 and 4e6 records/s is 2e6: one second.
	if n := commonCount(map[string]float64{"a": 1e6, "b": 4e6}, time.Second, 8, 64); n != 2_000_000 {
		t.Errorf("count %d, want 2000000", n)
	}
	if n := commonCount(map[string]float64{"a": 1e6}, time.Hour, 1, 4096); n > (6<<30)/4096 {
		t.Errorf("count %d is not bounded by 6 GiB", n)
	}
	if n := commonCount(map[string]float64{"a": 10, "b": 0}, time.Millisecond, 3, 64); n%3 != 0 || n < 1000 {
		t.Errorf("count %d: want a multiple of g, at least 1000", n)
	}
}
