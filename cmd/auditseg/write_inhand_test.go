package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"golang.org/x/sys/unix"
)

// TestWriteSyncAlwaysHoldsLittleInput holds README's claim for `write
// --sync always`: stdin is read 4 KiB at a time, "so at most 12 KiB of
// input, plus a record spanning blocks being assembled, is in hand" (read
// from stdin, not committed; with always, a committed record is durable
// before the next is appended). A feeder keeps the pipe full; at random
// instants the child is stopped whole, and what left the pipe is
// compared with what the log holds.
func TestWriteSyncAlwaysHoldsLittleInput(t *testing.T) {
	const longest = 120 // the longest line the feeder writes, newline included
	dir, cmd, pr, pw, stderr := startSlowWrite(t)
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill() }) // a failure leaves it stopped, perhaps
	fd := int(pw.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	// written counts the bytes in the pipe or read from it; mu holds it
	// together with the pipe while a snapshot is taken. Non-blocking
	// writes of a line each (under PIPE_BUF): none is ever half in.
	var mu sync.Mutex
	written := 0
	stop, fed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stopFeeding := func() { once.Do(func() { close(stop) }); <-fed }
	defer stopFeeding()
	go func() {
		defer close(fed)
		for i := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			line := fmt.Sprintf("line %08d %s\n", i, strings.Repeat("y", i%(longest-15)))
			mu.Lock()
			n, err := syscall.Write(fd, []byte(line))
			if err == nil {
				written += n
				i++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	waitForRecord(t, dir)
	most := 0
	for range 15 {
		time.Sleep(time.Duration(20+time.Now().UnixNano()%80) * time.Millisecond)
		stopWhole(t, pid)
		mu.Lock()
		queued, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ) // FIONREAD
		taken := written - queued
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		held := taken - committedBytes(t, dir)
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if held < 0 || held > 12<<10+longest {
			t.Fatalf("%d bytes of input read and not committed; want at most 12 KiB plus a record (%d)", held, 12<<10+longest)
		}
		most = max(most, held)
	}
	stopFeeding()
	pw.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("write: %v\n%s", err, stderr)
	}
	if most == 0 {
		t.Error("no input was ever in hand: the feeder did not keep the writer busy")
	}
	if got := committedBytes(t, dir); got != written {
		t.Errorf("%d bytes committed of %d written", got, written)
	}
	t.Logf("at most %d bytes in hand", most)
}

// stopWhole sends SIGSTOP to pid and returns once every thread of it is
// stopped: a thread still in a read or an msync would change what the
// test sees.
func stopWhole(t *testing.T, pid int) {
	t.Helper()
	stopProcess(t, pid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, task := range tasks {
			// A thread's ID names it in /proc too.
			if tid, err := strconv.Atoi(filepath.Base(task)); err != nil || procState(t, tid) != 'T' {
				running++
			}
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: %d threads not stopped after a minute", pid, running)
		}
	}
}

// committedBytes is the input the log at dir holds, one line a record.
func committedBytes(t *testing.T, dir string) int {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{Start: reader.Skip(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		n += len(r.Record().Payload) + 1
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
