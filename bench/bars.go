package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	statusPass = "PASS"
	statusMiss = "**MISS**"
	statusNA   = "n/a"
)

// bar is one target from the issues with what this run measured.
type bar struct {
	issue, text, measured, status, why string
	profile                            *profileSpec
	detail                             string // evidence printed with a miss
}

// profileSpec is the package benchmark that exercises the code behind a
// bar; a miss prints the command to profile it (and -profile runs it).
type profileSpec struct {
	pkg, bench string
}

func (p profileSpec) command() string {
	return fmt.Sprintf("go test -run '^$' -bench '%s' -benchtime 2s -o /tmp/auditseg.test -cpuprofile /tmp/auditseg.cpu ./%s && go tool pprof -top -nodecount 25 /tmp/auditseg.cpu", p.bench, p.pkg)
}

var (
	profAppend = func(size, g int) *profileSpec {
		return &profileSpec{"pkg/writer", fmt.Sprintf("^BenchmarkAppend$/^auditseg$/^%dB$/^g%d$", size, g)}
	}
	profVerify  = &profileSpec{"pkg/verify", "^BenchmarkVerify$"}
	profArchive = &profileSpec{"pkg/archive", "^BenchmarkRun$"}
	profReader  = &profileSpec{"pkg/reader", "^BenchmarkReplay$"}
)

func judge(ok bool) string {
	if ok {
		return statusPass
	}
	return statusMiss
}

func naBar(issue, text, why string) bar {
	return bar{issue: issue, text: text, measured: "–", status: statusNA, why: why}
}

// medianRatioBar judges the ratio of the medians of two cells against a
// lower bound: cells measured minutes apart, with no rounds in common, so
// per-round ratios would pair runs that have nothing to do with each other.
func medianRatioBar(issue, text string, num, den []float64, lo float64, prof *profileSpec) bar {
	if len(num) == 0 || len(den) == 0 || median(den) == 0 {
		return naBar(issue, text, "no runs")
	}
	r := median(num) / median(den)
	return bar{issue: issue, text: text, measured: fmtRatio(r) + " (ratio of medians)", status: judge(r >= lo), profile: prof}
}

// ratioBar judges a median ratio against a bound: at least lo (lo > 0) or
// at most hi (hi > 0).
func ratioBar(issue, text string, rs []float64, lo, hi float64, prof *profileSpec) bar {
	if len(rs) == 0 {
		return naBar(issue, text, "no runs")
	}
	m := median(rs)
	ok := (lo == 0 || m >= lo) && (hi == 0 || m <= hi)
	return bar{issue: issue, text: text, measured: fmtRatioRange(rs), status: judge(ok), profile: prof}
}

func libRates(cells []libCell, size, g int, key string) []float64 {
	for _, c := range cells {
		if c.size == size && c.g == g {
			return c.rates[key]
		}
	}
	return nil
}

func evalBars(res *results) []bar {
	var bars []bar
	// Issue 2: library append against the bufio peer.
	if libRates(res.lib, 64, 1, "append") != nil || res.libErr != nil || res.skipped["lib"] {
		lib := func(size, g int, lo float64, text string) {
			rs := pairRatios(libRates(res.lib, size, g, "append"), libRates(res.lib, size, g, "bufio"))
			b := ratioBar("#2", text, rs, lo, 0, profAppend(size, g))
			if len(rs) == 0 {
				b.why = libWhy(res)
			}
			bars = append(bars, b)
		}
		lib(64, 1, 1.2, "Append 64 B g1 ≥ 1.2× bufio peer")
		for _, g := range []int{2, 4, 8} {
			lib(64, g, 1.0, fmt.Sprintf("Append 64 B g%d ≥ 1.0× bufio peer", g))
		}
		lib(4096, 1, 0.8, "Append 4 KiB g1 ≥ 0.8× bufio peer")
		for _, size := range []int{64, 256, 4096} {
			b := medianRatioBar("#2", fmt.Sprintf("Append %s: g8 ≥ 0.7× g1 (no collapse)", sizeName(size)),
				libRates(res.lib, size, 8, "append"), libRates(res.lib, size, 1, "append"), 0.7, profAppend(size, 8))
			if b.status == statusNA {
				b.why = libWhy(res)
			}
			bars = append(bars, b)
		}
	}
	// The same 64 B bars on the sustained runs (long enough that the
	// peer's page cache outgrows the memory freed just before it).
	if len(res.sustained) > 0 || res.sustainErr != nil {
		why := whyMissing(res.sustainErr, false, "")
		if res.sustainErr == nil {
			why = "cell not measured (-quick measures fewer)"
		}
		sus := func(text string, rs []float64, lo float64) {
			b := ratioBar("#2", fmt.Sprintf("%s, sustained (%s runs)", text, res.sustainTime), rs, lo, 0, nil)
			if len(rs) == 0 {
				b.why = why
			}
			bars = append(bars, b)
		}
		rates := func(g int, key string) []float64 { return libRates(res.sustained, 64, g, key) }
		sus("Append 64 B g1 ≥ 1.2× bufio peer", pairRatios(rates(1, "append"), rates(1, "bufio")), 1.2)
		for _, g := range []int{2, 4, 8} {
			sus(fmt.Sprintf("Append 64 B g%d ≥ 1.0× bufio peer", g), pairRatios(rates(g, "append"), rates(g, "bufio")), 1.0)
		}
		b := medianRatioBar("#2", fmt.Sprintf("Append 64 B: g8 ≥ 0.7× g1 (no collapse), sustained (%s runs)", res.sustainTime),
			rates(8, "append"), rates(1, "append"), 0.7, nil)
		if b.status == statusNA {
			b.why = why
		}
		bars = append(bars, b)
	}
	const latText = "Append p99.9 at 64 B, paced, across rotations < 10 µs (from each record's scheduled start)"
	switch {
	case res.lat != nil:
		// Judged on the corrected latency: time in the call alone hides
		// a stall at a rotation behind the few calls it lands on, while
		// every record scheduled during it waits too.
		p := res.lat.ours.corrected.Quantile(0.999)
		measured := fmt.Sprintf("%s (in the call: %s, max %s)", fmtNs(float64(p)),
			fmtNs(float64(res.lat.ours.service.Quantile(0.999))), fmtNs(float64(res.lat.ours.service.Max())))
		bars = append(bars, bar{issue: "#2", text: latText, measured: measured, status: judge(p < 10_000), profile: profAppend(64, 1)})
	default:
		bars = append(bars, naBar("#2", latText, whyMissing(res.latErr, res.skipped["latency"], "")))
	}
	for _, c := range res.cli {
		bars = append(bars, cliBars(c, res)...)
	}
	for _, m := range res.mem {
		text := m.title + " does not grow with the log (large ≤ 1.25× small)"
		issue := m.issue
		if issue == "" {
			issue = "#3/#2"
		}
		switch {
		case m.unavailable != "" || m.err != nil || m.small == 0 || math.IsNaN(m.small) || math.IsNaN(m.large):
			bars = append(bars, naBar(issue, text, whyMissing(m.err, false, m.unavailable)))
		case m.smallLog < 4*64<<20:
			// Below a few segments the figure still grows with the log
			// (one more segment mapped or prefaulted), so no verdict.
			b := naBar(issue, text, "the small log is under 4 segments (a full run's is 8+)")
			b.measured = fmt.Sprintf("%s → %s", fmtBytes(m.small), fmtBytes(m.large))
			bars = append(bars, b)
		default:
			r := m.large / m.small
			bars = append(bars, bar{issue: issue, text: text, measured: fmt.Sprintf("%s → %s (%.2f×)", fmtBytes(m.small), fmtBytes(m.large), r), status: judge(r <= 1.25)})
		}
	}
	f := res.follow
	const fText, iText = "follow latency p99 ≤ 2 ms (commit → line printed by `tail -f`)", "idle `tail -f` CPU near zero (≤ 1 % of a core)"
	switch {
	case f == nil:
		bars = append(bars, naBar("#3", fText, whyMissing(nil, res.skipped["follow"], "")), naBar("#3", iText, whyMissing(nil, res.skipped["follow"], "")))
	case f.unavailable != "" || f.err != nil || f.lat.Count() == 0:
		why := whyMissing(f.err, false, f.unavailable)
		bars = append(bars, naBar("#3", fText, why), naBar("#3", iText, why))
	default:
		p99 := f.lat.Quantile(0.99)
		bars = append(bars, bar{issue: "#3", text: fText, measured: "p50 " + fmtNs(float64(f.lat.Quantile(0.5))) + ", p99 " + fmtNs(float64(p99)), status: judge(p99 <= 2_000_000), profile: profReader})
		frac := f.idleCPU.Seconds() / f.cfg.idle.Seconds()
		bars = append(bars, bar{issue: "#3", text: iText, measured: fmt.Sprintf("%.2f s CPU in %s idle (%.2f %%)", f.idleCPU.Seconds(), f.cfg.idle, 100*frac), status: judge(frac <= 0.01), profile: profReader})
	}
	return bars
}

func cliBars(c *cliCase, res *results) []bar {
	type spec struct {
		issue, text string
		lo, hi      float64
		throughput  bool // ratio of throughputs (peer time / ours) instead of times
		prof        *profileSpec
		cmd         string // the command line, for perf
	}
	var specs []spec
	switch c.ours.name {
	case "auditseg write":
		specs = []spec{{"#2", "`write` wall time ≤ 1.4× `cat > file`", 0, 1.4, false, profAppend(64, 1), "auditseg write /tmp/perf-log < input.txt"}}
	case "auditseg write --sync none":
		specs = []spec{{"#2", "`write --sync none` wall time ≤ 1.4× `cat > file` (neither flushes)", 0, 1.4, false, profAppend(64, 1), "auditseg write --sync none /tmp/perf-log < input.txt"}}
	case "tail -n +1":
		specs = []spec{{"#3", "`tail -n +1` replay ≥ 0.5× `cat` throughput", 0.5, 0, true, profReader, "auditseg tail -n +1 LOG > /dev/null"}}
	case "verify":
		specs = []spec{{"#4", "full `verify` ≥ 0.5× `cat` throughput", 0.5, 0, true, profVerify, "auditseg verify LOG"}}
	case "verify --quick", "auditseg write (same runs)":
		return nil // --quick is judged against full verify below; the pipe peer has no bar
	case "compress-finished":
		specs = []spec{{"#5", "`compress-finished` wall time ≤ 1.2× `zstd -3 -T2`", 0, 1.2, false, profArchive, "auditseg compress-finished --jobs 2 LOG-COPY"}}
	}
	var bars []bar
	for _, s := range specs {
		if c.unavailable != "" || c.err != nil {
			bars = append(bars, naBar(s.issue, s.text, whyMissing(c.err, res.skipped["cli"], c.unavailable)))
			continue
		}
		rs := pairRatios(c.ours.secs, c.peer.secs)
		if s.throughput {
			rs = pairRatios(c.peer.secs, c.ours.secs)
		}
		b := ratioBar(s.issue, s.text, rs, s.lo, s.hi, s.prof)
		b.detail = fmt.Sprintf("Medians: %s %.3f s wall, %.3f s CPU (user+sys); %s %.3f s wall, %.3f s CPU. Wall time well above CPU time means the command waited (disk, msync/fsync, the pipe), which no CPU profile shows. The whole command, kernel included (page faults, msync, TLB shootdowns): `perf record -g -o /tmp/perf.data %s` then `perf report -i /tmp/perf.data --no-children --sort symbol`.",
			c.ours.name, median(c.ours.secs), median(c.ours.cpu), c.peer.name, median(c.peer.secs), median(c.peer.cpu), s.cmd)
		bars = append(bars, b)
	}
	if c.ours.name == "compress-finished" {
		const text = "`compress-finished` output ≤ 1.05× `zstd -3` size"
		if c.unavailable != "" || c.err != nil {
			bars = append(bars, naBar("#5", text, whyMissing(c.err, false, c.unavailable)))
		} else {
			bars = append(bars, ratioBar("#5", text, pairRatios(c.sizeOurs, c.sizePeer), 0, 1.05, nil))
		}
	}
	if c.ours.name == "verify" {
		// --quick is judged against the full verify of the same runs.
		for _, q := range res.cli {
			if q.ours.name == "verify --quick" && q.err == nil && q.unavailable == "" && c.err == nil && c.unavailable == "" {
				bars = append(bars, ratioBar("#4", "`verify --quick` much faster than full verify (read as ≥ 2×)", pairRatios(c.ours.secs, q.ours.secs), 2, 0, profVerify))
			}
		}
	}
	return bars
}

func libWhy(res *results) string {
	if res.libErr != nil || res.skipped["lib"] {
		return whyMissing(res.libErr, res.skipped["lib"], "")
	}
	return "cell not measured (-quick measures fewer)"
}

func whyMissing(err error, skipped bool, unavailable string) string {
	switch {
	case unavailable != "":
		return unavailable
	case skipped:
		return "not run (excluded by -cases)"
	case err != nil:
		return "error: " + firstLine(err.Error())
	}
	return "not measured"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// runProfiles runs the package benchmark behind each missed bar (at most
// limit distinct ones) and keeps the top of its CPU profile for the doc.
func runProfiles(repo, work string, bars []bar, limit int, logf func(string, ...any)) map[string]string {
	out := map[string]string{}
	for _, b := range bars {
		if b.status != statusMiss || b.profile == nil || len(out) >= limit {
			continue
		}
		key := b.profile.command()
		if _, done := out[key]; done {
			continue
		}
		prof := filepath.Join(work, "cpu.out")
		logf("profiling for the missed bar %q", b.text)
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", b.profile.bench, "-benchtime", "1s", "-o", filepath.Join(work, "prof.test"), "-cpuprofile", prof, "./"+b.profile.pkg)
		cmd.Dir = repo
		cmd.WaitDelay = time.Second
		bo, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(bo), "ns/op") {
			out[key] = "(the benchmark did not run: " + firstLine(strings.TrimSpace(string(bo))) + ")"
			continue
		}
		top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount", "20", prof).CombinedOutput()
		os.Remove(prof)
		if err != nil {
			out[key] = "(pprof failed: " + firstLine(string(top)) + ")"
			continue
		}
		// Keep the totals line and the table; the file and build id lines
		// say nothing to a reader.
		var keep []string
		for _, line := range strings.Split(strings.TrimSpace(string(top)), "\n") {
			if !strings.HasPrefix(line, "File:") && !strings.HasPrefix(line, "Build ID:") && !strings.HasPrefix(line, "Time:") {
				keep = append(keep, line)
			}
		}
		out[key] = strings.Join(keep, "\n")
	}
	return out
}
