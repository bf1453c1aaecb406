package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine describes where the figures were measured; the doc prints it
// above every table because the ratios depend on it.
type machine struct {
	CPU, Kernel, Go, Filesystem, ClockSource, Commit, Tools string
	Cores                                                   int
	RAM                                                     int64
	NowCost                                                 time.Duration
	Date                                                    time.Time
	Load                                                    string
	Pages                                                   pageCosts
}

func describeMachine(repo, workDir string) machine {
	m := machine{
		CPU:         firstField("/proc/cpuinfo", "model name"),
		Kernel:      strings.TrimSpace(readString("/proc/sys/kernel/osrelease")),
		Go:          runtime.Version(),
		Cores:       runtime.NumCPU(),
		ClockSource: strings.TrimSpace(readString("/sys/devices/system/clocksource/clocksource0/current_clocksource")),
		Date:        time.Now().UTC(),
		Load:        loadAvg(),
		Filesystem:  mountOf(workDir),
		NowCost:     timeNowCost(),
		// The default segment size, three times: about a second.
		Pages: probePages(workDir, 64<<20, 3),
	}
	if kb, err := strconv.ParseInt(strings.Fields(firstField("/proc/meminfo", "MemTotal") + " 0")[0], 10, 64); err == nil {
		m.RAM = kb << 10
	}
	var tools []string
	for _, t := range [][]string{{"cat", "--version"}, {"zstd", "--version"}} {
		if out, err := exec.Command(t[0], t[1:]...).Output(); err == nil {
			line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			tools = append(tools, strings.Trim(line, "* "))
		}
	}
	m.Tools = strings.Join(tools, "; ")
	if out, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
	}
	return m
}

func loadAvg() string {
	f := strings.Fields(readString("/proc/loadavg"))
	return strings.Join(f[:min(3, len(f))], " ")
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// firstField returns the value of the first "key : value" line of a /proc
// file.
func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// mountOf names the file system holding dir: device, type and the mount
// point, from the longest matching mount point in /proc/self/mounts.
func mountOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	best, bestLen := "unknown", -1
	for _, line := range strings.Split(readString("/proc/self/mounts"), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		inside := abs == mp || mp == "/" || strings.HasPrefix(abs, mp+"/")
		if inside && len(mp) > bestLen {
			best, bestLen = fmt.Sprintf("%s on %s (%s)", f[2], mp, f[0]), len(mp)
		}
	}
	return best
}

// timeNowCost is the median cost of one time.Now call: it bounds how
// finely the latency histograms can resolve, and the writer's clock option
// exists because of it.
func timeNowCost() time.Duration {
	const n = 20000
	best := time.Duration(1 << 62)
	for range 5 {
		t0 := time.Now()
		for range n {
			_ = time.Now()
		}
		best = min(best, time.Since(t0)/n)
	}
	return best
}

func (m machine) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| date | %s |\n", m.Date.Format(time.RFC3339))
	fmt.Fprintf(&b, "| commit | %s |\n", m.Commit)
	fmt.Fprintf(&b, "| CPU | %s, %d logical cores (GOMAXPROCS %d) |\n", m.CPU, m.Cores, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "| RAM | %s |\n", fmtBytes(float64(m.RAM)))
	fmt.Fprintf(&b, "| kernel | Linux %s, clock source %s (time.Now ≈ %d ns) |\n", m.Kernel, m.ClockSource, m.NowCost.Nanoseconds())
	fmt.Fprintf(&b, "| file system of the runs | %s |\n", m.Filesystem)
	b.WriteString(m.Pages.markdown())
	fmt.Fprintf(&b, "| Go | %s |\n", m.Go)
	fmt.Fprintf(&b, "| peers' tools | %s |\n", m.Tools)
	fmt.Fprintf(&b, "| load average at start | %s |\n", m.Load)
	return b.String()
}
