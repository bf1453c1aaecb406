package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailGivesUpOutputNotRead: tail -f stopped by a signal while its
// consumer is alive but not reading (`less` until scrolled) waited for
// the pipe to close, then died of SIGPIPE with its cursor not stored. It
// must give the output up (at a second signal, or after stallGrace with
// no progress), store the cursor at a record up to which it wrote in full and
// exit 2; every record up to the cursor must have reached the pipe
// whole. A consumer that reads, however slowly, is not given up on.
func TestTailGivesUpOutputNotRead(t *testing.T) {
	bin := buildBinary(t)
	catchIgnored(syscall.SIGHUP)
	for _, tc := range []struct {
		name    string
		signals []syscall.Signal
		slow    bool // the consumer reads slowly after the signal
	}{
		{"second signal", []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP}, false},
		{"no progress", []syscall.Signal{syscall.SIGTERM}, false},
		{"slow consumer", []syscall.Signal{syscall.SIGTERM}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, cursor := t.TempDir(), filepath.Join(t.TempDir(), "cursor")
			// Segments of 64 KiB: a sealed one is written in one piece
			// (Bulk), which bounds what a write in flight at the signal
			// holds, and so how long the slow consumer takes over it.
			writeInput(t, bin, dir, "64KiB", stallLines(0, 100))
			cmd, pr, stderr := startUnread(t, bin, "tail", "-f", "-n", "+1", "--cursor-file", cursor, dir)

			// The first records printed and flushed; then more than the
			// pipe and tail's buffer hold, followed live.
			first := strings.Join(stallLines(0, 100), "\n") + "\n"
			waitPipe(t, pr, func(n int) bool { return n == len(first) }, "the first records")
			writeInput(t, bin, dir, "64KiB", stallLines(100, 60000))
			waitPipe(t, pr, func(n int) bool { return n >= 32<<10 }, "a full pipe") // pipe pages partly filled: under 64 KiB

			sendSignals(t, cmd, tc.signals...)
			var out []byte
			readDone := make(chan error, 1)
			go func() {
				if tc.slow {
					// 64 KiB every 2 s: a pause of 2 s after the
					// signal and between pieces, well within
					// stallGrace; tail takes a 64 KiB piece at each.
					buf := make([]byte, stallChunk)
					for {
						time.Sleep(2 * time.Second)
						n, err := io.ReadFull(pr, buf)
						out = append(out, buf[:n]...)
						if err != nil {
							readDone <- nil
							return
						}
					}
				}
				readDone <- nil
			}()
			err := waitExit(t, cmd, stderr)
			var ee *exec.ExitError
			if tc.slow {
				<-readDone
				if err != nil {
					t.Fatalf("exit: %v, want 0; stderr: %s", err, stderr.String())
				}
				// All tail printed, up to the cursor: it stops reading
				// the log at the signal.
				c := readCursorFile(t, cursor)
				if want := linesUpTo(t, dir, c.pos.String()); string(out) != want {
					t.Fatalf("the consumer got %d bytes, want the %d of the records up to the cursor %s", len(out), len(want), c.pos)
				}
				return
			}
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("exit: %v, want %d; stderr: %s", err, exitUsage, stderr.String())
			}
			<-readDone
			if out, err = io.ReadAll(pr); err != nil {
				t.Fatal(err)
			}
			c := readCursorFile(t, cursor)
			msg := fmt.Sprintf("output not read after the interrupt: every record up to %s was written in full;", c.pos)
			if !strings.Contains(stderr.String(), msg) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), msg)
			}
			if notice := "the output is not being read; giving it up"; strings.Contains(stderr.String(), notice) == (len(tc.signals) > 1) {
				t.Fatalf("stderr %q: notice %q given %v, want it only when tail waits", stderr.String(), notice, len(tc.signals) > 1)
			}
			// Every record up to the cursor reached the consumer whole.
			want := linesUpTo(t, dir, c.pos.String())
			if !bytes.HasPrefix(out, []byte(want)) {
				t.Fatalf("the pipe holds %d bytes, not the %d of the records up to the cursor %s", len(out), len(want), c.pos)
			}
		})
	}
}

// startUnread starts the binary with args, its stdout a pipe the test
// holds open and does not read unless it reads pr.
func startUnread(t *testing.T, bin string, args ...string) (*exec.Cmd, *os.File, *lockedBuffer) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close() })
	cmd := exec.Command(bin, args...)
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = pw, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, pr, stderr
}

func sendSignals(t *testing.T, cmd *exec.Cmd, sigs ...syscall.Signal) {
	t.Helper()
	for _, sig := range sigs {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
}

// waitExit waits for cmd to exit after the signals. Without the give-up
// a command waits for the pipe to close, which the test holds open: the
// test fails here, not by timing out.
func waitExit(t *testing.T, cmd *exec.Cmd, stderr *lockedBuffer) error {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s still running 60 s after the signals; stderr: %s", cmd.Args[1], stderr.String())
		return nil
	}
}

func readCursorFile(t *testing.T, path string) cursor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no cursor stored: %v", err)
	}
	c, err := parseCursor(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTailReplayGivenUpSaysNoMore: a replay (no -f) from --from whose
// first bulk write is given up has written no record whole, yet it
// printed records: no warning that there is no record at or after the
// position, only the output error.
func TestTailReplayGivenUpSaysNoMore(t *testing.T) {
	bin := buildBinary(t)
	catchIgnored(syscall.SIGHUP)
	dir := t.TempDir()
	// A first bulk write of about 1 MiB, which the pipe cannot take.
	writeInput(t, bin, dir, "1MiB", stallLines(0, 60000))
	cmd, pr, stderr := startUnread(t, bin, "tail", "--from", "1:64", dir)
	waitPipe(t, pr, func(n int) bool { return n >= 32<<10 }, "a full pipe")
	sendSignals(t, cmd, syscall.SIGTERM, syscall.SIGHUP)
	err := waitExit(t, cmd, stderr)
	var ee *exec.ExitError
	want := "auditseg tail: write output: output not read after the interrupt: no record was written in full\n"
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || stderr.String() != want {
		t.Fatalf("exit %v, stderr %q: want exit %d and only %q", err, stderr.String(), exitUsage, want)
	}
}

func stallLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("stalled output %06d %s", i, strings.Repeat("z", i%64)))
	}
	return out
}

// writeInput runs `auditseg write` on dir, in segments of segSize, with
// lines as its input.
func writeInput(t *testing.T, bin, dir, segSize string, lines []string) {
	t.Helper()
	cmd := exec.Command(bin, "write", "-q", "--segment-size", segSize, dir)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write: %v: %s", err, out)
	}
}

// waitPipe waits until the bytes waiting in the pipe pr satisfy ok, and
// stay so for 200 ms (tail is blocked or idle).
func waitPipe(t *testing.T, pr *os.File, ok func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, since := -1, time.Now()
	for {
		n, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ) // FIONREAD
		if err != nil {
			t.Fatal(err)
		}
		if n != last {
			last, since = n, time.Now()
		} else if ok(n) && time.Since(since) >= 200*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %d bytes in the pipe", what, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linesUpTo is what `tail -n +1` prints of dir's records up to the one
// at pos, inclusive.
func linesUpTo(t *testing.T, dir, pos string) string {
	t.Helper()
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", "-o", "json", dir)
	if code != exitOK {
		t.Fatalf("tail: exit %d: %s", code, stderr)
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r struct{ Position, Payload string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		b.WriteString(r.Payload + "\n")
		if r.Position == pos {
			return b.String()
		}
	}
	t.Fatalf("no record at %s", pos)
	return ""
}

// TestReportGivenUpWhenNotRead: verify and compress-finished write their
// report once the run is over; a stop signal while a consumer that does
// not read holds that write left them blocked until it exited (every
// later signal caught). At a second signal they give the output up and
// exit 2, as tail does.
func TestReportGivenUpWhenNotRead(t *testing.T) {
	bin := buildBinary(t)
	catchIgnored(syscall.SIGHUP)
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("r"), 4000)
	for range 700 * 16 { // 700 segments: reports of well over 64 KiB
		if _, err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"verify", "--quick", "-o", "json", dir},
		{"compress-finished", "--dry-run", "-o", "json", dir},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd, pr, stderr := startUnread(t, bin, args...)
			waitPipe(t, pr, func(n int) bool { return n >= 32<<10 }, "a full pipe")
			sendSignals(t, cmd, syscall.SIGTERM, syscall.SIGHUP)
			err := waitExit(t, cmd, stderr)
			var ee *exec.ExitError
			want := "write output: output not read after the interrupt"
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(stderr.String(), want) {
				t.Fatalf("exit %v, stderr %q: want exit %d and %q", err, stderr.String(), exitUsage, want)
			}
		})
	}
}

// TestStallWriterWaitsWhileTaken: after the signal, a write whose pieces
// are taken, each within stallGrace, is waited for however long it takes
// in all; one of which nothing is taken for stallGrace is given up, and
// a second signal gives it up at once. SIGUSR1 stands for the stop
// signals, sent to this process.
func TestStallWriterWaitsWhileTaken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		read    bool // a piece taken every 2 s
		signals int
	}{
		{"taken", true, 1},
		{"not taken", false, 1},
		{"second signal", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			done := make(chan struct{})
			defer close(done)
			var notices atomic.Int32
			// Two signals, as two of the same pending at once are one.
			sigs := []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2}
			s := newStallWriter(pw, []os.Signal{sigs[0], sigs[1]}, done, func() { notices.Add(1) })
			if !s.chunked {
				t.Fatal("a pipe is written in pieces")
			}
			for _, sig := range sigs[:tc.signals] {
				if err := syscall.Kill(os.Getpid(), sig); err != nil {
					t.Fatal(err)
				}
			}
			if tc.read {
				go func() {
					buf := make([]byte, stallChunk)
					for {
						time.Sleep(2 * time.Second)
						if _, err := io.ReadFull(pr, buf); err != nil {
							return
						}
					}
				}()
			}
			p := make([]byte, 4*stallChunk) // the pipe holds one piece
			start := time.Now()
			n, err := s.Write(p)
			took := time.Since(start)
			switch {
			case tc.read && (err != nil || n != len(p) || took <= stallGrace):
				t.Fatalf("Write: %d bytes, %v, after %v; want all, taken over more than %v", n, err, took, stallGrace)
			case !tc.read && !errors.Is(err, errOutputStalled):
				t.Fatalf("Write: %d bytes, %v; want errOutputStalled", n, err)
			case tc.signals > 1 && took >= time.Second:
				t.Fatalf("given up after %v at the second signal", took)
			case tc.signals == 1 && !tc.read && (took < stallGrace || notices.Load() != 1):
				t.Fatalf("given up after %v, %d notices; want after %v, one notice", took, notices.Load(), stallGrace)
			}
			if _, err := s.Write([]byte("x")); !tc.read && !errors.Is(err, errOutputStalled) {
				t.Fatalf("a write after the give-up: %v", err)
			}
		})
	}
}
