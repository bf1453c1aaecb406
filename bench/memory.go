package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// memCase compares one command's peak resident set on a small and a large
// log: it must not grow with the size of the log.
type memCase struct {
	issue              string // the issue whose bar it is; "#3/#2" if empty
	title              string
	small, large       float64 // median peak RSS, bytes
	smallLog, largeLog int64
	unavailable        string
	err                error
}

// runMemoryCases measures peak RSS of `write`, `tail -n +1`,
// `tail -n +1 -f` and a full `verify` on a log of a quarter of the input
// and on the whole input. The large figure for write comes from its timed
// runs.
func runMemoryCases(cfg cliConfig, smallInput, smallLog, largeLog string, write *cliCase, haveTail, haveVerify string) []*memCase {
	wm := &memCase{title: "`auditseg write` (peak RSS)"}
	var rs []float64
	for range 2 {
		os.RemoveAll(smallLog)
		r, err := runProc(procIO{stdin: smallInput}, cfg.bin, "write", "--quiet", smallLog)
		if err != nil {
			wm.err = err
			break
		}
		rs = append(rs, float64(r.maxRSS))
	}
	wm.small, wm.large = median(rs), median(write.ours.rss)
	wm.smallLog, wm.largeLog = logBytes(smallLog), logBytes(largeLog)
	if write.err != nil {
		wm.err = write.err
	}

	tm := &memCase{title: "`auditseg tail -n +1` (peak RSS)", smallLog: logBytes(smallLog), largeLog: logBytes(largeLog), unavailable: haveTail}
	fm := &memCase{title: "`auditseg tail -n +1 -f`, caught up (VmHWM)", smallLog: tm.smallLog, largeLog: tm.largeLog, unavailable: haveTail}
	if haveTail == "" {
		var e1, e2 error
		tm.small, e1 = peakRSS(cfg.bin, "tail", "-n", "+1", smallLog)
		tm.large, e2 = peakRSS(cfg.bin, "tail", "-n", "+1", largeLog)
		tm.err = errors.Join(e1, e2)
		timeout := 2 * time.Minute
		if cfg.size < 1<<30 {
			timeout = 20 * time.Second
		}
		s, err1 := followPeakRSS(cfg.bin, smallLog, fileSize(smallInput), timeout)
		l, err2 := followPeakRSS(cfg.bin, largeLog, write.bytes, timeout)
		fm.small, fm.large = float64(s), float64(l)
		fm.err = errors.Join(err1, err2)
	}
	vm := &memCase{issue: "#4", title: "full `auditseg verify` (peak RSS)", smallLog: tm.smallLog, largeLog: tm.largeLog, unavailable: haveVerify}
	if haveVerify == "" {
		var e1, e2 error
		vm.small, e1 = peakRSS(cfg.bin, "verify", smallLog)
		vm.large, e2 = peakRSS(cfg.bin, "verify", largeLog)
		vm.err = errors.Join(e1, e2)
	}
	return []*memCase{wm, tm, fm, vm}
}

// peakRSS is the median peak RSS of five runs of `auditseg ARGS...` (two
// were not enough: a 13 MiB verify varies by 2 MiB from run to run, the
// Go runtime's threads and heap, and the bar is a 25 % ratio); the
// error is a failed run's (the case then reports it and no verdict). With
// GNU time installed it is the child's rusage maxrss, taken by time(1),
// which forks rather than vforks (see runProc): exact. Otherwise it is
// runProc's VmHWM sampled every 10 ms, which misses a peak reached in the
// last moments of a short run (a tail -n +1 of a small log takes 0.1 s:
// sampled 49 MiB where time(1) says 71).
func peakRSS(bin string, args ...string) (float64, error) {
	var rs []float64
	for range rssRuns {
		v, err := onePeakRSS(bin, args...)
		if err != nil {
			return median(rs), err
		}
		rs = append(rs, v)
	}
	return median(rs), nil
}

// rssRuns is how many runs peakRSS takes the median of.
const rssRuns = 5

const gnuTime = "/usr/bin/time"

func onePeakRSS(bin string, args ...string) (float64, error) {
	if _, err := os.Stat(gnuTime); err != nil {
		r, err := runProc(procIO{}, bin, args...)
		return float64(r.maxRSS), err
	}
	f, err := os.CreateTemp("", "auditseg-bench-rss-")
	if err != nil {
		return 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	if _, err := runProc(procIO{}, gnuTime, append([]string{"-f", "%M", "-o", f.Name(), bin}, args...)...); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, err
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q: %w", gnuTime, b, err)
	}
	return float64(kb << 10), nil
}

func logBytes(dir string) int64 {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	return sumSizes(paths)
}
