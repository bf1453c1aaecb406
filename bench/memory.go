package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
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
		peak := func(dir string) float64 {
			var rs []float64
			for range 2 {
				r, err := runProc(procIO{}, cfg.bin, "tail", "-n", "+1", dir)
				if err != nil {
					tm.err = err
					break
				}
				rs = append(rs, float64(r.maxRSS))
			}
			return median(rs)
		}
		tm.small, tm.large = peak(smallLog), peak(largeLog)
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
		vm.small, vm.large, vm.err = peakRSS(cfg.bin, smallLog, "verify"), peakRSS(cfg.bin, largeLog, "verify"), nil
	}
	return []*memCase{wm, tm, fm, vm}
}

// peakRSS is the median peak RSS of two runs of `auditseg CMD dir`, NaN if
// a run fails (the case then reports no verdict).
func peakRSS(bin, dir, cmd string) float64 {
	var rs []float64
	for range 2 {
		r, err := runProc(procIO{}, bin, cmd, dir)
		if err != nil {
			return math.NaN()
		}
		rs = append(rs, float64(r.maxRSS))
	}
	return median(rs)
}

func logBytes(dir string) int64 {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	return sumSizes(paths)
}
