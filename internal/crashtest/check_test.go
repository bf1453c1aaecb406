package crashtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

type gkey struct{ run, g uint32 }

// ledger is what the children acknowledged, by writer goroutine, in
// acknowledgement order (which is each goroutine's record order).
type ledger struct {
	acked map[gkey][]segment.Position
	n     int
}

func newLedger() *ledger { return &ledger{acked: map[gkey][]segment.Position{}} }

func (l *ledger) ack(run uint32, m Msg) error {
	k := gkey{run, m.G}
	if uint64(len(l.acked[k])) != m.I {
		return fmt.Errorf("child acknowledged run %d goroutine %d record %d out of order (expected %d)", run, m.G, m.I, len(l.acked[k]))
	}
	l.acked[k] = append(l.acked[k], m.Pos)
	l.n++
	return nil
}

// readBack is a log as pkg/reader returns it.
type readBack struct {
	records int
	found   map[gkey][]segment.Position // by record number
	damage  []reader.Damage
}

// readLog reads every record of dir and checks what can be checked without
// the ledger: every payload intact, each goroutine's records numbered
// 0, 1, 2... in position order with no gap and no repeat, and runs in
// order (a run's records all after the previous run's: the writer that
// reopened continued after what was there).
func readLog(dir string) (*readBack, error) {
	rb := &readBack{found: map[gkey][]segment.Position{}}
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { rb.damage = append(rb.damage, d) }})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var lastRun uint32
	var problems []string
	for r.Next() {
		rec := r.Record()
		id, err := ParseRecord(rec.Payload)
		rb.records++
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("record at %v: %v", rec.Position, err))
		case id.Run == ^uint32(0):
			problems = append(problems, fmt.Sprintf("aborted reservation read back as a record at %v", rec.Position))
		case id.Run < lastRun:
			problems = append(problems, fmt.Sprintf("%v at %v comes after a record of run %d", id, rec.Position, lastRun))
		default:
			lastRun = id.Run
			k := gkey{id.Run, id.G}
			if uint64(len(rb.found[k])) != id.I {
				problems = append(problems, fmt.Sprintf("%v at %v: expected record %d of that goroutine (duplicate or gap)", id, rec.Position, len(rb.found[k])))
				continue
			}
			rb.found[k] = append(rb.found[k], rec.Position)
		}
		if len(problems) > 10 {
			break
		}
	}
	if err := r.Err(); err != nil {
		problems = append(problems, "reader: "+err.Error())
	}
	if len(problems) > 0 {
		return rb, errors.New(strings.Join(problems, "\n"))
	}
	return rb, nil
}

// lost returns the acknowledged records that are not where Append said.
func (l *ledger) lost(rb *readBack) (n int, first string) {
	for k, ps := range l.acked {
		got := rb.found[k]
		for i, p := range ps {
			if i >= len(got) || got[i] != p {
				if n == 0 {
					where := "missing"
					if i < len(got) {
						where = "found at " + got[i].String()
					}
					first = fmt.Sprintf("%v acknowledged at %v, %s", RecordID{k.run, k.g, uint64(i)}, p, where)
				}
				n++
			}
		}
	}
	return n, first
}

// checkCrashed checks a log whose writer was killed: every acknowledged
// record present once, intact, in order; the reader reports only crash
// leftovers; verify reports only crash residue in segments after sealedUpTo
// (the newest segment sealed before the crashed run started) and counts the
// same records. It returns the newest sealed segment.
func checkCrashed(t *testing.T, dir string, led *ledger, sealedUpTo uint64) (uint64, *readBack) {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) && led.n == 0 {
		return 0, &readBack{} // killed before it created the directory
	}
	rb, err := readLog(dir)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if n, first := led.lost(rb); n > 0 {
		t.Fatalf("%s: %d acknowledged records lost; first: %s", dir, n, first)
	}
	for _, d := range rb.damage {
		if !d.Kind.CrashLeftover() {
			t.Fatalf("%s: reader reports damage that a crash does not leave: %v", dir, &d)
		}
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		switch {
		case f.Class == verify.Unexpected:
		case f.Class == verify.Unfinished && f.Residue && f.Seq > sealedUpTo:
		default:
			t.Fatalf("%s: verify finding after a kill: %+v", dir, f)
		}
	}
	if rep.Totals.Records != uint64(rb.records) {
		t.Fatalf("%s: verify counts %d records, the reader returned %d", dir, rep.Totals.Records, rb.records)
	}
	var sealed uint64
	for _, s := range rep.Segments {
		if s.State == verify.StateSealed || s.State == verify.StateRecovered {
			sealed = max(sealed, s.Seq)
		}
	}
	return sealed, rb
}

// recoverAndCheck opens the log as a new writer would, appends records of
// run, closes, and checks that the log is then clean for verify (no
// finding at all) and holds everything it held before plus the new records.
func recoverAndCheck(t *testing.T, dir string, led *ledger, run uint32, opts writer.Options) {
	t.Helper()
	before, err := readLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	if st := w.Recovered(); st.DamagedSegments != 0 {
		t.Errorf("%s: recovery found damaged segments: %+v", dir, st)
	}
	for i := range 50 {
		id := RecordID{Run: run, G: 0, I: uint64(i)}
		p, err := w.Append(AppendRecord(nil, id))
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if err := led.ack(run, Msg{Kind: MsgAck, G: 0, I: uint64(i), Pos: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after recovery: %v", err)
	}
	rb, err := readLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, first := led.lost(rb); n > 0 {
		t.Fatalf("%s: after recovery, %d acknowledged records lost; first: %s", dir, n, first)
	}
	if rb.records != before.records+50 || len(rb.damage) != 0 {
		t.Fatalf("%s: after recovery %d records (%d damage reports), before %d", dir, rb.records, len(rb.damage), before.records)
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.ExitCode(true) != verify.ExitClean {
		t.Fatalf("%s: verify after recovery: exit %d, findings %+v", dir, rep.ExitCode(true), rep.Findings)
	}
}

// child is one run of a child process whose stdout carries Msgs.
type child struct {
	cmd     *exec.Cmd
	stderr  strings.Builder
	msgs    chan Msg
	readErr chan error
}

func startChild(t *testing.T, bin string, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), msgs: make(chan Msg, 4096), readErr: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = pdeathKill()
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.msgs)
		br := bufio.NewReaderSize(out, 64<<10)
		for {
			m, err := ReadMsg(br)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					c.readErr <- err
				}
				return
			}
			c.msgs <- m
		}
	}()
	return c
}

func (c *child) kill() { _ = c.cmd.Process.Signal(syscall.SIGKILL) }

// wait reaps the child and reports whether SIGKILL ended it; any other end
// but a clean exit fails the test with the child's stderr.
func (c *child) wait(t *testing.T) (killed bool) {
	t.Helper()
	select {
	case err := <-c.readErr:
		t.Fatalf("reading the child's reports: %v", err)
	default:
	}
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("child %v: %v\n%s", c.cmd.Args, err, c.stderr.String())
	}
	return false
}

// after returns a timer channel, or nil (never) for d <= 0.
func after(d time.Duration) <-chan time.Time {
	if d <= 0 {
		return nil
	}
	return time.After(d)
}
