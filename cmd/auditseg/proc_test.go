package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What /proc says of a child process, for tests that act on it at a point
// it has reached rather than after a guessed delay.

// procState is the state letter of process pid (/proc/PID/stat): R, S, D,
// T (stopped), Z...
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return b[i+2]
}

// stopProcess sends SIGSTOP to pid and returns once it is stopped.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, pid)
}

// waitStopped returns once process pid is stopped.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); procState(t, pid) != 'T'; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped after a minute", pid)
		}
	}
}

// sigMask is the signal set field of /proc/PID/status (SigPnd: pending
// for a thread, ShdPnd: for the process, SigIgn, SigCgt: ignored, caught)
// of process pid, in its main thread's view.
func sigMask(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %s: %v", pid, field, err)
			}
			return m
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// inMask reports whether sig is in a set read by sigMask.
func inMask(m uint64, sig syscall.Signal) bool { return m&(1<<(uint(sig)-1)) != 0 }

// catchIgnored undoes, for the tests, an ignored disposition of sig that
// the test process inherited (nohup ignores SIGHUP; a shell ignores
// SIGINT for its background jobs): the process catches sig from then on,
// so a command run in it subscribes to sig (stopSignals leaves an ignored
// signal ignored) and a child starts at the default action (execve resets
// a caught signal, not an ignored one). Without it, a signal a test sent
// for the command to stop on did nothing, and the test hung until
// something else ended the command. The catch is never stopped: after
// signal.Stop the disposition is ignored again, but signal.Ignored no
// longer says so, and a later test would not know to catch it.
func catchIgnored(sig syscall.Signal) {
	caughtMu.Lock()
	defer caughtMu.Unlock()
	if caught[sig] || !signal.Ignored(sig) {
		return
	}
	signal.Notify(make(chan os.Signal, 1), sig)
	caught[sig] = true
}

var (
	caughtMu sync.Mutex
	caught   = map[syscall.Signal]bool{}
)
