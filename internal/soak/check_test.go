package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// ---------- reading ----------

type readRec struct {
	Pos  Position
	Time int64
	Data []byte
}

func readAll(dir string, start reader.Start) ([]readRec, []reader.Damage, error) {
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{Start: start, OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []readRec
	for r.Next() {
		rec := r.Record()
		out = append(out, readRec{rec.Position, rec.Time.UnixNano(), append([]byte(nil), rec.Payload...)})
	}
	return out, dmg, r.Err()
}

// ---------- follower ----------

type follower struct {
	desc   string
	start  reader.Start
	since  time.Time
	mu     sync.Mutex
	got    []readRec
	dmg    []reader.Damage
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func startFollower(dir string, f *follower) error {
	opts := reader.Options{Start: f.start, Since: f.since, Follow: true, PollMax: 5 * time.Millisecond,
		OnDamage: func(d reader.Damage) { f.mu.Lock(); f.dmg = append(f.dmg, d); f.mu.Unlock() }}
	r, err := reader.Open(dir, opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		defer r.Close()
		for {
			for r.Next() {
				rec := r.Record()
				f.mu.Lock()
				f.got = append(f.got, readRec{rec.Position, rec.Time.UnixNano(), append([]byte(nil), rec.Payload...)})
				f.mu.Unlock()
			}
			if r.Err() != nil {
				f.mu.Lock()
				f.err = r.Err()
				f.mu.Unlock()
				return
			}
			if err := r.Wait(ctx); err != nil {
				if ctx.Err() == nil {
					f.mu.Lock()
					f.err = err
					f.mu.Unlock()
				}
				return
			}
		}
	}()
	return nil
}

// waitFor waits until the follower has delivered pos (or anything after).
func (f *follower) waitFor(pos Position, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.got)
		ok := n > 0 && f.got[n-1].Pos.Compare(pos) >= 0
		e := f.err
		f.mu.Unlock()
		if ok || e != nil {
			return ok
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func (f *follower) stop() {
	f.cancel()
	<-f.done
}

// ---------- archiver ----------

type archiver struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	errs  []string
	runs  int
	count int
}

func startArchiver(dir string, rng *rand.Rand) *archiver {
	a := &archiver{stopc: make(chan struct{}), done: make(chan struct{})}
	pause := time.Duration(2+rng.IntN(40)) * time.Millisecond
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.stopc:
				return
			case <-time.After(pause):
			}
			res, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1})
			a.mu.Lock()
			a.runs++
			if err != nil {
				a.errs = append(a.errs, "archive.Run: "+err.Error())
			} else {
				if e := res.Err(); e != nil {
					a.errs = append(a.errs, "archive.Run segment: "+e.Error())
				}
				a.count += res.Done
			}
			a.mu.Unlock()
		}
	}()
	return a
}

func (a *archiver) stop() []string {
	close(a.stopc)
	<-a.done
	return a.errs
}

// ---------- checks ----------

type checker struct {
	t    *testing.T
	tag  string
	errs []string
}

func (c *checker) fail(format string, args ...any) {
	s := c.tag + ": " + fmt.Sprintf(format, args...)
	c.errs = append(c.errs, s)
	c.t.Error(s)
}

// checkLog reads dir from First and checks it against the book. strict: every
// acked record must be there (else only those with beforeKill).
func (c *checker) checkLog(dir string, b *book, crash bool, allowLeftover bool) []readRec {
	recs, dmg, err := readAll(dir, reader.First())
	if err != nil {
		c.fail("read %s: %v", dir, err)
	}
	for _, d := range dmg {
		if !(allowLeftover && d.Kind.CrashLeftover()) {
			c.fail("read %s: damage %v at %d:%d len %d: %v", dir, d.Kind, d.Seq, d.Offset, d.Len, d.Err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[Position]bool{}
	ids := map[uint64]Position{}
	var prev Position
	for i, r := range recs {
		if i > 0 && r.Pos.Compare(prev) <= 0 {
			c.fail("record %d at %v not after %v", i, r.Pos, prev)
		}
		prev = r.Pos
		if seen[r.Pos] {
			c.fail("record at %v read twice", r.Pos)
		}
		seen[r.Pos] = true
		if id, ok := selfConsistent(r.Data); !ok {
			c.fail("record at %v (%d bytes) is not a payload this harness wrote", r.Pos, len(r.Data))
		} else if len(r.Data) >= 8 {
			if p, dup := ids[id]; dup {
				c.fail("record id %d at %v and %v", id, p, r.Pos)
			}
			ids[id] = r.Pos
		}
		e := b.byPos[r.Pos]
		if e == nil {
			if !crash {
				c.fail("record at %v (%d bytes) was never handed out by the writer", r.Pos, len(r.Data))
			}
			continue // crash: an append whose return the parent never heard of
		}
		if e.st == stAborted || e.st == stNotCommited {
			c.fail("record at %v is data although its reservation was %s", r.Pos, map[state]string{stAborted: "aborted", stNotCommited: "refused"}[e.st])
			continue
		}
		if !crash && e.st == stReserved {
			c.fail("record at %v read, but its reservation was never committed", r.Pos)
		}
		if e.data != nil {
			if string(r.Data) != string(e.data) {
				c.fail("record at %v changed: %d bytes, was %d", r.Pos, len(r.Data), len(e.data))
			}
		} else if len(r.Data) != e.size || string(r.Data) != string(payload(e.id, e.size)) {
			c.fail("record at %v: %d bytes read, want id %d of %d bytes", r.Pos, len(r.Data), e.id, e.size)
		}
	}
	lost := 0
	var firstLost []string
	for p, e := range b.byPos {
		need := e.st == stAcked && (!crash || e.beforeKill)
		if need && !seen[p] {
			lost++
			if len(firstLost) < 5 {
				firstLost = append(firstLost, fmt.Sprintf("%v(%dB)", p, e.size))
			}
		}
	}
	if lost > 0 {
		c.fail("%d acknowledged records missing from %s, e.g. %v", lost, dir, firstLost)
	}
	return recs
}

func (c *checker) verifyDir(dir string, allow3 bool) {
	rep, err := verify.Dir(dir, verify.Options{Workers: 1})
	if err != nil {
		c.fail("verify %s: %v", dir, err)
		return
	}
	code := rep.ExitCode(false)
	if code == 0 || (code == 3 && allow3) {
		return
	}
	var fs []string
	for _, f := range rep.Findings {
		b, _ := json.Marshal(f)
		fs = append(fs, string(b))
		if len(fs) > 8 {
			break
		}
	}
	c.fail("verify %s: exit %d (allow3=%v): %s", dir, code, allow3, strings.Join(fs, "\n  "))
}

// checkFollower: f delivered exactly the records of final that its start
// selects, in order.
func (c *checker) checkFollower(f *follower, final []readRec, want []readRec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		c.fail("follower %s: %v", f.desc, f.err)
	}
	for _, d := range f.dmg {
		if !d.Kind.CrashLeftover() {
			c.fail("follower %s: damage %v at %d:%d len %d: %v", f.desc, d.Kind, d.Seq, d.Offset, d.Len, d.Err)
		}
	}
	n := min(len(f.got), len(want))
	for i := 0; i < n; i++ {
		if f.got[i].Pos != want[i].Pos || string(f.got[i].Data) != string(want[i].Data) {
			c.fail("follower %s: record %d is %v (%dB), want %v (%dB) [got %d, want %d records]", f.desc, i, f.got[i].Pos, len(f.got[i].Data), want[i].Pos, len(want[i].Data), len(f.got), len(want))
			return
		}
	}
	if len(f.got) != len(want) {
		extra := ""
		if len(f.got) > len(want) {
			extra = fmt.Sprintf(" first extra %v", f.got[len(want)].Pos)
		} else {
			extra = fmt.Sprintf(" first missing %v", want[len(f.got)].Pos)
		}
		c.fail("follower %s: delivered %d records, want %d;%s", f.desc, len(f.got), len(want), extra)
	}
}

// ---------- child (the writer that gets killed) ----------

// childWriter is the writer that gets killed: it appends as the session
// spec says and writes a line for every outcome to file descriptor 3 (the
// acknowledgements runChild books), until the parent kills it.
func childWriter(spec string) {
	var o sessOpts
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "soak child:", err)
		os.Exit(2)
	}
	out := os.NewFile(3, "acks")
	var mu sync.Mutex
	emit := func(s string) {
		mu.Lock()
		_, _ = out.WriteString(s)
		mu.Unlock()
	}
	w, err := writer.Open(o.Dir, o.writerOpts())
	if err != nil {
		emit("E " + strconv.Quote(err.Error()) + "\n")
		os.Exit(7)
	}
	emit("O\n")
	var nextID atomic.Uint64
	nextID.Store(o.IDBase)
	var stop atomic.Bool
	for {
		work(w, o, func(kind string, p Position, id uint64, size int) {
			emit(fmt.Sprintf("%s %d %d %d %d\n", kind, p.Seq, p.Offset, id, size))
		}, &nextID, &stop, func(s string) { emit("B " + strconv.Quote(s) + "\n") })
		if o.CloseMidAt > 0 {
			break
		}
	}
	emit("D\n")
	// Until killed. Pdeathsig kills it if the test dies first; the bound
	// is for anything else.
	time.Sleep(10 * time.Minute)
	os.Exit(3)
}

// runChild starts the writer in a child process and returns after killing
// it. Lines are noted into b as they arrive; those noted before the kill are
// marked beforeKill.
func runChild(t *testing.T, o sessOpts, b *book, killAfter time.Duration, bad func(string)) (killedAt int, err error) {
	spec, _ := json.Marshal(o)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec), "GOMAXPROCS=2")
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pw.Close()
	var killed atomic.Bool
	var lines atomic.Int64
	opened := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "O":
				if !once {
					once = true
					close(opened)
				}
				continue
			case "D":
				continue
			case "B", "E":
				bad("child: " + sc.Text())
				continue
			}
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			off, _ := strconv.ParseInt(f[2], 10, 64)
			id, _ := strconv.ParseUint(f[3], 10, 64)
			size, _ := strconv.Atoi(f[4])
			p := Position{Seq: seq, Offset: off}
			if killed.Load() {
				// after the kill: still noted (the record may be in the log)
				// but not required
				b.note(f[0], p, id, size)
				continue
			}
			b.note(f[0], p, id, size)
			if f[0] == "A" || f[0] == "C" {
				b.mu.Lock()
				b.byPos[p].beforeKill = true
				b.mu.Unlock()
			}
			lines.Add(1)
		}
		if !once {
			close(opened)
		}
	}()
	select {
	case <-opened:
	case <-time.After(60 * time.Second):
	}
	time.Sleep(killAfter)
	// Stop reading acks first, then kill: any ack line read after this
	// point is not counted as acknowledged-before-the-kill. The kill is
	// after the flag, so every line counted was written before the kill.
	killed.Store(true)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	<-readDone
	return int(lines.Load()), nil
}
