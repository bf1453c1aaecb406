package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/auditseg/auditseg/pkg/writer"
)

type followConfig struct {
	bin, work  string
	duration   time.Duration // of the paced phase
	rate       float64       // mean records per second (Poisson arrivals)
	idle       time.Duration // idle window for the CPU figure
	segSize    int64
	recordSize int
}

type followResult struct {
	cfg         followConfig
	lat         *hist
	sent, got   int
	segments    int
	idleCPU     time.Duration
	unavailable string
	err         error
}

// runFollow measures commit-to-print latency across processes: this
// process appends records through the library (the commit), a child
// `auditseg tail -f` prints them to a pipe this process reads. Each record
// carries its index; the latency is the time from just before Append to
// the line arriving, on one monotonic clock. Then no record arrives for
// cfg.idle and the child's CPU time over that window is the idle cost.
func runFollow(cfg followConfig, have string) *followResult {
	res := &followResult{cfg: cfg, lat: newHist(), unavailable: have}
	if have != "" {
		return res
	}
	res.err = res.run()
	return res
}

func (res *followResult) run() error {
	cfg := res.cfg
	dir, err := os.MkdirTemp(cfg.work, "follow-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: cfg.segSize, Sync: writer.SyncNone})
	if err != nil {
		return err
	}
	defer w.Close()

	cmd := exec.Command(cfg.bin, "tail", "-f", "-n", "+1", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer stopChild(cmd)

	n := int(cfg.rate * cfg.duration.Seconds())
	sentAt := make([]atomic.Int64, n)
	base := time.Now()
	// The reader never blocks on this process: it counts lines and pokes
	// a one-slot channel.
	var printed atomic.Int64
	poke := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(out, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				readErr <- err
				return
			}
			now := int64(time.Since(base))
			if idx, ok := parseFollowLine(line); ok && idx < n {
				res.lat.Record(now - sentAt[idx].Load())
			}
			printed.Add(1)
			select {
			case poke <- struct{}{}:
			default:
			}
		}
	}()

	pad := make([]byte, cfg.recordSize)
	record := func(tag string, i int) []byte {
		p := append(pad[:0], tag...)
		p = strconv.AppendInt(p, int64(i), 10)
		p = append(p, ' ')
		for len(p) < cfg.recordSize {
			p = append(p, 'x')
		}
		return p
	}
	// The child may still be starting: send warm-up records until one is
	// printed, so its start-up is not counted as latency.
	ready := false
	for i := 0; !ready && i < 500; i++ {
		if _, err := w.Append(record("warm ", i)); err != nil {
			return err
		}
		select {
		case <-poke:
			ready = true
		case err := <-readErr:
			return fmt.Errorf("tail -f exited before printing: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !ready {
		return errors.New("tail -f printed nothing within 10 s")
	}
	time.Sleep(200 * time.Millisecond)
	warm := printed.Load()

	// Arrivals on an absolute schedule (a running sum of exponential
	// gaps): a short sleep lasts at least ~1.1 ms here, so sleeping each
	// gap offered ~580 records/s, not cfg.rate, and no bursts. A record
	// whose time has passed is sent at once.
	r := rand.New(rand.NewPCG(3, 4))
	next := time.Now()
	for i := range n {
		next = next.Add(time.Duration(r.ExpFloat64() / cfg.rate * float64(time.Second)))
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		sentAt[i].Store(int64(time.Since(base)))
		if _, err := w.Append(record("lat ", i)); err != nil {
			return err
		}
	}
	res.sent = n
	deadline := time.After(5 * time.Second)
	for res.got = int(printed.Load() - warm); res.got < n; res.got = int(printed.Load() - warm) {
		select {
		case <-poke:
		case err := <-readErr:
			return fmt.Errorf("tail -f stopped after %d of %d records: %w", res.got, n, err)
		case <-deadline:
			return fmt.Errorf("tail -f printed %d of %d records within 5 s of the last", res.got, n)
		}
	}
	res.segments = countSegments(dir)

	cpu0, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	time.Sleep(cfg.idle)
	cpu1, err := cpuTime(cmd.Process.Pid)
	if err != nil {
		return err
	}
	res.idleCPU = cpu1 - cpu0
	return nil
}

func parseFollowLine(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("lat "))
	if !ok {
		return 0, false
	}
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	v, err := strconv.Atoi(string(rest))
	return v, err == nil
}

// stopChild interrupts a follower and waits for it, killing it if it does
// not exit within 5 s.
func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// followPeakRSS starts `tail -n +1 -f` on a finished log, reads its output
// until it has printed want bytes (the log's input: it has caught up) and
// returns its peak resident set while it still follows.
func followPeakRSS(bin, dir string, want int64, timeout time.Duration) (int64, error) {
	cmd := exec.Command(bin, "tail", "-f", "-n", "+1", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer stopChild(cmd)
	var got atomic.Int64
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := out.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(timeout)
	for got.Load() < want {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("tail -f printed %d of %d bytes within %s", got.Load(), want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few idle polls, in case they allocate
	return vmHWM(cmd.Process.Pid)
}
