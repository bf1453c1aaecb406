package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procResult is one child process run: wall time from start to exit, peak
// resident set (VmHWM, sampled every 10 ms) and CPU time.
type procResult struct {
	wall, user, sys time.Duration
	maxRSS          int64 // bytes
	stderr          string
}

// io for a child: stdin from a file ("" = none), stdout to a file ("" =
// /dev/null) or to a writer.
type procIO struct {
	stdin, stdout string
	out           io.Writer
}

func runProc(pio procIO, name string, args ...string) (procResult, error) {
	cmd := exec.Command(name, args...)
	if pio.stdin != "" {
		f, err := os.Open(pio.stdin)
		if err != nil {
			return procResult{}, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	switch {
	case pio.out != nil:
		cmd.Stdout = pio.out
	default:
		path := pio.stdout
		if path == "" {
			path = os.DevNull
		}
		f, err := os.Create(path)
		if err != nil {
			return procResult{}, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 4096}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return procResult{}, err
	}
	// rusage maxrss cannot be used: Go starts children with vfork, and
	// execve records the parent's high-water RSS as the child's, so every
	// child would report at least this harness's peak. VmHWM of the
	// child's own address space is sampled instead until it exits.
	stopPoll := make(chan struct{})
	polled := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := vmHWM(cmd.Process.Pid); err == nil {
				peak = max(peak, v)
			}
			select {
			case <-stopPoll:
				polled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	res := procResult{wall: time.Since(t0), stderr: strings.TrimSpace(stderr.String())}
	close(stopPoll)
	res.maxRSS = <-polled
	if ps := cmd.ProcessState; ps != nil {
		res.user, res.sys = ps.UserTime(), ps.SystemTime()
	}
	if err != nil {
		return res, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, res.stderr)
	}
	return res, nil
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// cpuTime is a process's user+system CPU time from /proc/PID/stat, in
// clock ticks of 1/100 s (USER_HZ is 100 on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields resume after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// vmHWM is a live process's peak resident set from /proc/PID/status.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// hasCommand reports whether the built binary has the subcommand and
// every flag named (as it appears in the help, e.g. "--follow"); when not,
// the reason says what is missing.
func hasCommand(bin, sub string, flags ...string) (bool, string) {
	out, err := exec.Command(bin, "help", sub).CombinedOutput()
	s := string(out)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// The binary did not run at all: a broken run, not an older build.
		return false, "error: " + err.Error()
	}
	if err != nil || strings.Contains(s, "Unknown help topic") || !strings.Contains(s, "Usage:") {
		return false, fmt.Sprintf("not available yet: this build has no `auditseg %s`", sub)
	}
	var missing []string
	for _, fl := range flags {
		if !strings.Contains(s, fl) {
			missing = append(missing, fl)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("not available yet: `auditseg %s` has no %s", sub, strings.Join(missing, ", "))
	}
	return true, ""
}

// settle flushes dirty pages (so one run's write-back does not land in the
// next run's timing) and, for cold-cache runs, drops the page cache.
func settle(cold bool) {
	syscall.Sync()
	if cold {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil && !dropWarned {
			dropWarned = true
			fmt.Fprintf(os.Stderr, "bench: -cold: cannot drop the page cache (%v); the runs are warm\n", err)
		}
	}
}

var dropWarned bool
