// Command bench measures auditseg against its peers, side by side in one
// run, and writes docs/BENCHMARKS.md and docs/bench-append.png.
//
//	cd bench && go run .          # full run, ≤ ~14 minutes
//	cd bench && go run . -quick   # ≤ 1 minute, proves the harness works
//
// It is its own module so the peers' dependencies (tidwall/wal, gonum
// plot) never enter auditseg's go.mod.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type results struct {
	m           machine
	quick, cold bool
	command     string
	runs        int
	elapsed     time.Duration
	skipped     map[string]bool
	lib         []libCell
	libErr      error
	libTarget   time.Duration
	sustained   []libCell
	sustainErr  error
	sustainTime time.Duration
	lat         *latResult
	latErr      error
	buildErr    error
	inputSize   int64
	cli         []*cliCase
	mem         []*memCase
	follow      *followResult
	bars        []bar
	profiles    map[string]string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		quick    = flag.Bool("quick", false, "short runs (≤ 1 minute) that only prove the harness works")
		out      = flag.String("out", "", "markdown file to write (default: <repo>/docs/BENCHMARKS.md); the plot goes beside it as bench-append.png")
		runs     = flag.Int("runs", 0, "measured runs per side (default 5, -quick 3)")
		cases    = flag.String("cases", "lib,sustained,latency,cli,follow", "cases to run: lib, sustained, latency, cli (write, tail, verify, compress, memory), follow")
		libTime  = flag.Duration("libtime", 0, "length of one library run (default 500ms, -quick 50ms)")
		sustain  = flag.Duration("sustain", 0, "length of one sustained library run (default 10s, -quick 1s)")
		sizeFlag = flag.Int64("size", 0, "CLI input bytes (default 2 GiB, -quick 64 MiB)")
		cold     = flag.Bool("cold", false, "drop the page cache before every CLI run (needs root)")
		profile  = flag.Bool("profile", true, "profile the package benchmark behind each missed bar and include the top (skipped with -quick)")
		binFlag  = flag.String("bin", "", "auditseg binary to measure instead of building ./cmd/auditseg from the checkout")
		skeleton = flag.Bool("skeleton", false, "write the doc's hand-written blocks and no figures, then exit")
		workFlag = flag.String("work", "", "scratch directory (default <repo>/bench/.work, on the repository's file system)")
	)
	flag.Parse()
	start := time.Now()
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(repo, "docs", "BENCHMARKS.md")
	}
	if *skeleton {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		blocks := handBlocks(*out, filepath.Join(repo, "docs", "BENCHMARKS.md"))
		return os.WriteFile(*out, []byte(renderSkeleton(blocks)), 0o644)
	}
	if *libTime == 0 {
		*libTime = 500 * time.Millisecond
		if *quick {
			*libTime = 50 * time.Millisecond
		}
	}
	if *sustain == 0 {
		*sustain = 10 * time.Second
		if *quick {
			*sustain = time.Second
		}
	}
	if *runs == 0 {
		*runs = 5
		if *quick {
			*runs = 3
		}
	}
	if *sizeFlag == 0 {
		*sizeFlag = 2 << 30
		if *quick {
			*sizeFlag = 64 << 20
		}
	}
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	work := *workFlag
	if work == "" {
		work = filepath.Join(repo, "bench", ".work")
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	work, err = os.MkdirTemp(work, "run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	want := map[string]bool{}
	for _, c := range strings.Split(*cases, ",") {
		want[strings.TrimSpace(c)] = true
	}
	res := &results{
		quick: *quick, cold: *cold, runs: *runs, libTarget: *libTime, inputSize: *sizeFlag,
		command: "go run . " + strings.Join(os.Args[1:], " "), skipped: map[string]bool{}, sustainTime: *sustain,
	}
	for _, c := range []string{"lib", "sustained", "latency", "cli", "follow"} {
		res.skipped[c] = !want[c]
	}
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(f, a...))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(work, &st); err == nil {
		// Input, a quarter-size input, two logs (~1.3× their input), and a
		// library run of up to 6 GiB, or a sustained one (~1 GB/s).
		need := 4*uint64(*sizeFlag) + max(6<<30, uint64(sustain.Seconds()*(1<<30)))
		if free := st.Bavail * uint64(st.Bsize); free < need {
			logf("warning: %s free in %s, the run may need %s", fmtBytes(float64(free)), work, fmtBytes(float64(need)))
		}
	}
	res.m = describeMachine(repo, work)
	logf("machine: %s, %d cores; work dir %s (%s)", res.m.CPU, res.m.Cores, work, res.m.Filesystem)

	if want["lib"] {
		cfg := libConfig{sizes: []int{64, 256, 4096}, goroutines: []int{1, 2, 4, 8}, target: *libTime, runs: *runs, work: work}
		if *quick {
			cfg.sizes, cfg.goroutines = []int{64, 4096}, []int{1, 4}
		}
		res.lib, res.libErr = runLibrary(cfg, logf)
	}
	if want["sustained"] {
		// The short runs above fit in memory freed just before them; these
		// do not (see the methodology). 64 B only, the hardest size.
		cfg := libConfig{sizes: []int{64}, goroutines: []int{1, 2, 4, 8}, runs: 3, work: work, sustain: *sustain,
			only: map[string]bool{"append": true, "bufio": true}}
		if *quick {
			cfg.goroutines = []int{1}
		}
		res.sustained, res.sustainErr = runLibrary(cfg, logf)
	}
	if want["latency"] {
		cfg := latConfig{rate: 1e6, size: 64, segSize: 4 << 20, rotations: 10, runs: *runs, work: work}
		res.lat, res.latErr = runLatency(cfg, logf)
	}
	var bin string
	if want["cli"] || want["follow"] {
		bin, res.buildErr = *binFlag, nil
		if bin == "" {
			bin, res.buildErr = buildBinary(repo, work)
		}
		if res.buildErr != nil {
			logf("build failed: %v", res.buildErr)
		}
	}
	if want["cli"] && res.buildErr == nil {
		runCLI(res, bin, work, *sizeFlag, logf)
		res.cold = res.cold && !dropWarned
	}
	if want["follow"] && res.buildErr == nil {
		_, haveTail := hasCommand(bin, "tail", "--follow")
		cfg := followConfig{bin: bin, work: work, duration: 5 * time.Second, rate: 1000, idle: 10 * time.Second, segSize: 64 << 10, recordSize: 64}
		if *quick {
			cfg.duration, cfg.idle = time.Second, 2*time.Second
		}
		res.follow = runFollow(cfg, haveTail)
		if f := res.follow; f.err != nil {
			logf("follow: %v", f.err)
		} else if f.unavailable == "" {
			logf("follow: p50 %s p99 %s, idle CPU %s", fmtNs(float64(f.lat.Quantile(0.5))), fmtNs(float64(f.lat.Quantile(0.99))), f.idleCPU)
		}
	}

	res.bars = evalBars(res)
	// Profiles are extra evidence: skipped when the run is already long,
	// so the whole command stays within about fourteen minutes.
	if *profile && !*quick && time.Since(start) < 12*time.Minute {
		res.profiles = runProfiles(repo, work, res.bars, 3, logf)
	}
	res.elapsed = time.Since(start)

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	blocks := handBlocks(*out, filepath.Join(repo, "docs", "BENCHMARKS.md"))
	plotPath := filepath.Join(filepath.Dir(*out), "bench-append.png")
	plotName := ""
	if len(res.lib) > 0 {
		title := "auditseg vs peers"
		if *quick {
			title += " (-quick: not meaningful)"
		}
		if err := writePlot(plotPath, res.lib, []int{64, 256, 4096}, title); err != nil {
			logf("plot: %v", err)
		} else {
			plotName = filepath.Base(plotPath)
		}
	}
	if err := os.WriteFile(*out, []byte(renderReport(res, blocks, plotName)), 0o644); err != nil {
		return err
	}
	logf("wrote %s (%d bars: %s)", *out, len(res.bars), barCounts(res.bars))
	// A case that failed is reported as n/a like one not asked for; the
	// exit status tells them apart, so that CI's -quick run proves the
	// harness works rather than that it writes a file.
	if n := unmeasured(res.bars); n > 0 {
		return fmt.Errorf("%d of %d bars could not be measured (see %s)", n, len(res.bars), *out)
	}
	return nil
}

// unmeasured counts the bars of cases that ran and measured nothing: an
// error, or no runs. Cases excluded by -cases, and commands the checkout
// does not have yet, do not count.
func unmeasured(bars []bar) int {
	n := 0
	for _, b := range bars {
		if b.status == statusNA && (strings.HasPrefix(b.why, "error: ") || b.why == "no runs" || b.why == "not measured") {
			n++
		}
	}
	return n
}

func runCLI(res *results, bin, work string, size int64, logf func(string, ...any)) {
	cfg := cliConfig{bin: bin, work: work, size: size, runs: res.runs, cold: res.cold}
	input := filepath.Join(work, "input.txt")
	smallInput := filepath.Join(work, "input-small.txt")
	if _, err := genInput(input, size, 1); err != nil {
		res.cli = append(res.cli, &cliCase{title: "input", err: err})
		return
	}
	if _, err := genInput(smallInput, size/4, 2); err != nil {
		res.cli = append(res.cli, &cliCase{title: "input", err: err})
		return
	}
	logf("generated %s of input", fmtBytes(float64(fileSize(input))))
	logDir := filepath.Join(work, "log")
	w, wp, wn := runWriteCases(cfg, input, logDir)
	res.cli = append(res.cli, w, wp, wn)
	logf("write: %v; through a pipe: %v; --sync none: %v", caseLine(w), caseLine(wp), caseLine(wn))
	_, haveTail := hasCommand(bin, "tail", "-n")
	_, haveVerify := hasCommand(bin, "verify", "--quick")
	_, haveCompress := hasCommand(bin, "compress-finished", "--jobs")
	if w.err != nil {
		return
	}
	// The issues set the read and archive bars on 1 GiB of segments.
	sub, err := subsetLog(logDir, filepath.Join(work, "log-1g"), 1<<30)
	if err != nil {
		res.cli = append(res.cli, &cliCase{title: "1 GiB log", err: err})
		return
	}
	reads := runReadCases(cfg, sub, input, haveTail, haveVerify)
	for _, c := range reads {
		logf("%s: %v", c.ours.name, caseLine(c))
	}
	res.cli = append(res.cli, reads...)
	comp := runCompressCase(cfg, sub, haveCompress, "")
	logf("compress: %v", caseLine(comp))
	fast := runCompressCase(cfg, sub, haveCompress, "fastest")
	logf("compress --level fastest: %v", caseLine(fast))
	res.cli = append(res.cli, comp, fast)
	res.mem = runMemoryCases(cfg, smallInput, filepath.Join(work, "log-small"), logDir, w, haveTail, haveVerify)
	for _, m := range res.mem {
		logf("memory %s: small %s large %s %v %s", m.title, fmtBytes(m.small), fmtBytes(m.large), m.err, m.unavailable)
	}
}

func caseLine(c *cliCase) string {
	switch {
	case c.unavailable != "":
		return c.unavailable
	case c.err != nil:
		return "error: " + c.err.Error()
	}
	return fmt.Sprintf("ours %.3fs peer %.3fs ratio %s", median(c.ours.secs), median(c.peer.secs), fmtRatioRange(pairRatios(c.ours.secs, c.peer.secs)))
}

func barCounts(bars []bar) string {
	n := map[string]int{}
	for _, b := range bars {
		n[b.status]++
	}
	return fmt.Sprintf("%d pass, %d miss, %d n/a", n[statusPass], n[statusMiss], n[statusNA])
}

// repoRoot finds the auditseg module root above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/auditseg/auditseg\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no auditseg checkout above %s (run from the repository or bench/)", dir)
		}
	}
}

func buildBinary(repo, work string) (string, error) {
	bin := filepath.Join(work, "auditseg")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/auditseg")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/auditseg: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}
