package crashtest

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// The soak: randomized sessions against one log directory per seed, with
// the pieces a deployment runs at once. A session opens a writer with
// random options (segment size, record limit, sync mode, goroutines), a
// follower with a random start, and (two sessions in three) an archiver
// looping compress-finished, then runs random Append, Reserve+Commit,
// Reserve+Abort and Sync, sometimes with a Close racing them. It ends with
// Close in this process, or with SIGKILL of a child (this test binary,
// re-executed) that ran the workload. After a kill, the log and a copy of
// it are checked as they are, and again once writer.Open has recovered
// them. The book of what each writer promised spans the sessions, so a
// later session that loses an earlier record fails.
const (
	// SoakEnv runs the long soak for a duration (Go syntax: 20m); the
	// -soak.duration test flag does the same.
	SoakEnv = "AUDITSEG_SOAK"
	// SoakSeedEnv replays one seed (the failure message names it).
	SoakSeedEnv = "AUDITSEG_SOAK_SEED"
	// soakChildEnv makes the test binary the soak's writer child: the
	// session as JSON.
	soakChildEnv = "AUDITSEG_SOAK_CHILD"
	// soakDefaultSeeds is the CI size: each seed kills a child at least
	// once, and the whole stays well under 30 s with -race on 2 cores.
	soakDefaultSeeds = 3
)

var soakFlag = flag.Duration("soak.duration", 0, "run the randomized soak for this long (default: "+strconv.Itoa(soakDefaultSeeds)+" short seeds, or $"+SoakEnv+")")

func soakDuration(t *testing.T) time.Duration {
	if *soakFlag > 0 {
		return *soakFlag
	}
	s := os.Getenv(SoakEnv)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a duration such as 20m", SoakEnv, s)
	}
	return d
}

func TestSoak(t *testing.T) {
	long := soakDuration(t)
	seed, err := strconv.ParseUint(os.Getenv(SoakSeedEnv), 10, 64)
	replay := err == nil
	if !replay {
		seed = uint64(time.Now().UnixNano())
	}
	start := time.Now()
	var seeds, kills, acks int
	for ; ; seed++ {
		if seeds > 0 && (long == 0 && (replay || seeds >= soakDefaultSeeds) || long > 0 && time.Since(start) >= long) {
			break
		}
		seeds++
		var k, a int
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { k, a = soakSeed(t, seed, long > 0) }) {
			break // the seed's messages name it; more seeds would bury them
		}
		kills += k
		acks += a
	}
	summary(t, "seeds=%d kills=%d acknowledged_by_killed_children=%d in %v; checked: every acknowledged record read once, in order, intact; aborted ones never",
		seeds, kills, acks, time.Since(start).Round(time.Millisecond))
}

// soakSeed runs the sessions of one seed and returns the kills and the
// records the killed children acknowledged.
func soakSeed(t *testing.T, seed uint64, long bool) (kills, acks int) {
	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	root := t.TempDir()
	dir := filepath.Join(root, "log")
	b := newSoakBook()
	sessions := 2
	if long {
		sessions += rng.IntN(3)
	}
	crashed := false
	for s := range sessions {
		o := randSoakOpts(rng, seed, dir, long)
		o.IDBase = uint64(s+1) << 32 // past every id an earlier session used
		crash := rng.IntN(2) == 0 || !crashed && s == sessions-1
		crashed = crashed || crash
		c := &soakChecker{t: t, tag: fmt.Sprintf("seed %d session %d (replay: %s=%d go test -run 'TestSoak$' ./internal/crashtest/) crash=%v seg=%d max=%d sync=%v interval=%v goroutines=%d ops=%d closeMid=%v hold=%v longHold=%v",
			seed, s, SoakSeedEnv, seed, crash, o.SegmentSize, o.MaxRecord, writer.SyncMode(o.Sync), o.SyncInterval, o.Goroutines, o.Ops, o.CloseMidAt, o.HoldRes, o.LongHold)}
		began := time.Now()
		a := soakSession(c, rng, b, o, crash, root, s, s == sessions-1)
		t.Logf("%s: %v, %d acknowledged by the child", c.tag, time.Since(began).Round(time.Millisecond), a)
		if crash {
			kills++
			acks += a
		}
		if c.failed {
			return
		}
	}
	return
}

// soakSession runs one session and returns, for a crash, the records the
// child acknowledged.
func soakSession(c *soakChecker, rng *rand.Rand, b *soakBook, o soakOpts, crash bool, root string, s int, last bool) (acks int) {
	t, dir := c.t, o.Dir
	ctr := new(soakCounters)
	ctr.nextID.Store(o.IDBase)

	// A few records first, so the follower's start has something to
	// select; the writer recovers what the previous session left.
	w, err := writer.Open(dir, o.writerOpts())
	if err != nil {
		c.fail("open: %v", err)
		return
	}
	if st := w.Recovered(); st.DamagedSegments != 0 {
		c.fail("open recovered damaged segments: %+v", st)
	}
	for i := range rng.IntN(6) {
		id := ctr.nextID.Add(1)
		size := rng.IntN(min(o.maxRecord(), 200) + 1)
		p, err := w.Append(soakPayload(id, size))
		if err != nil {
			c.fail("prefill append: %v", err)
			break
		}
		b.note(soakAppended, p, id, size)
		if i == 2 {
			time.Sleep(3 * time.Millisecond) // two timestamps for Since
		}
	}
	if crash {
		if err := w.Close(); err != nil {
			c.fail("close after prefill: %v", err)
		}
	}
	before, _, err := soakReadAll(dir)
	if err != nil {
		c.fail("read before: %v", err)
	}
	f, want := soakFollowerFor(rng, before)
	c.tag += " follower=" + f.desc
	if err := f.run(dir); err != nil {
		c.fail("follower open: %v", err)
		if !crash {
			_ = w.Close()
		}
		return
	}
	defer f.stop()
	var arch *soakArchiver
	if rng.IntN(3) != 0 {
		arch = startSoakArchiver(dir, rng)
	}

	if !crash {
		soakWork(w, o, func(k byte, p segment.Position, id uint64, size int) {
			if e := b.note(k, p, id, size); e != "" {
				c.fail("%s", e)
			}
		}, ctr, func(s string) { c.fail("%s", s) })
		cerr := w.Close()
		unfinished := errors.Is(cerr, writer.ErrReservationsOpen)
		if cerr != nil && !unfinished {
			c.fail("Close: %v", cerr)
		}
		for _, e := range arch.stop() {
			c.fail("%s", e)
		}
		final := c.checkLog(dir, b, false, unfinished)
		c.verifyDir(dir, unfinished)
		c.checkFollower(f, want(final))
		b.resolve(final)
		return 0
	}

	killAfter := time.Duration(20+rng.IntN(600)) * time.Millisecond
	o.IDBase = ctr.nextID.Load() + 1
	acks = runSoakChild(c, o, b, killAfter)
	for _, e := range arch.stop() {
		c.fail("%s", e)
	}
	c.tag += fmt.Sprintf(" killAfter=%v acks=%d", killAfter, acks)
	cp := filepath.Join(root, fmt.Sprintf("crash%d", s))
	testfs.CopyFiles(t, dir, cp)
	c.verifyDir(dir, true)
	c.checkLog(dir, b, true, true)

	// The copy is recovered now; the original by the next session's Open
	// (or below, after the last session).
	if w2, err := writer.Open(cp, writer.Options{SegmentSize: o.SegmentSize, Sync: writer.SyncNone}); err != nil {
		c.fail("reopen the copy: %v", err)
	} else {
		if st := w2.Recovered(); st.DamagedSegments != 0 {
			c.fail("recovery of the copy: damaged segments: %+v", st)
		}
		if err := w2.Close(); err != nil {
			c.fail("close the recovered copy: %v", err)
		}
		c.verifyDir(cp, false)
		c.checkLog(cp, b, true, false)
	}
	if last {
		w3, err := writer.Open(dir, writer.Options{SegmentSize: o.SegmentSize})
		if err != nil {
			c.fail("reopen: %v", err)
			return acks
		}
		if st := w3.Recovered(); st.DamagedSegments != 0 {
			c.fail("recovery: damaged segments: %+v", st)
		}
		if err := w3.Close(); err != nil {
			c.fail("close after recovery: %v", err)
		}
		c.verifyDir(dir, false)
	}
	final := c.checkLog(dir, b, true, !last)
	c.checkFollower(f, want(final))
	b.resolve(final)
	return acks
}

// soakFollowerFor picks the follower's start and returns it with the
// function that selects, from the final log, what it must deliver.
func soakFollowerFor(rng *rand.Rand, before []soakRec) (*soakFollower, func([]soakRec) []soakRec) {
	f := &soakFollower{}
	k := rng.IntN(5)
	if len(before) == 0 {
		k = 0
	}
	switch k {
	case 0:
		f.desc, f.start = "First", reader.First()
		return f, func(final []soakRec) []soakRec { return final }
	case 1:
		n := uint64(rng.IntN(len(before) + 2))
		if rng.IntN(3) == 0 {
			n = 0
		}
		f.desc, f.start = fmt.Sprintf("Last(%d)", n), reader.Last(n)
		cut := max(0, len(before)-int(n))
		if cut == len(before) {
			p := before[cut-1].Pos
			p.Offset++
			return f, func(final []soakRec) []soakRec { return soakFrom(final, p, true) }
		}
		p := before[cut].Pos
		return f, func(final []soakRec) []soakRec { return soakFrom(final, p, true) }
	case 2, 3:
		p := before[rng.IntN(len(before))].Pos
		incl := k == 3
		if incl {
			f.desc, f.start = fmt.Sprintf("At(%v)", p), reader.At(p)
		} else {
			f.desc, f.start = fmt.Sprintf("After(%v)", p), reader.After(p)
		}
		return f, func(final []soakRec) []soakRec { return soakFrom(final, p, incl) }
	}
	ts := before[rng.IntN(len(before))].Time
	f.desc, f.since = fmt.Sprintf("Since(%d)", ts), time.Unix(0, ts)
	return f, func(final []soakRec) []soakRec {
		var out []soakRec
		for _, r := range final {
			if r.Time >= ts {
				out = append(out, r)
			}
		}
		return out
	}
}

// runSoakChild runs the session's workload in a child and SIGKILLs it
// killAfter after its writer.Open returned. Every report that reached the
// pipe was written after the call it reports returned, so every
// acknowledgement counts, including those read after the kill.
func runSoakChild(c *soakChecker, o soakOpts, b *soakBook, killAfter time.Duration) (acks int) {
	t := c.t
	spec, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	ch := startChild(t, os.Args[0], []string{soakChildEnv + "=" + string(spec)}, "-test.run=^$")
	timer := time.NewTimer(time.Minute) // Open not returned by then: kill anyway
	defer timer.Stop()
	ready, killed, bad := false, false, 0
	for msgs := ch.msgs; msgs != nil; {
		select {
		case m, ok := <-msgs:
			switch {
			case !ok:
				msgs = nil
			case m.Kind == MsgReady:
				ready = true
				timer.Reset(killAfter)
			case m.Kind == soakBad:
				bad++
			default:
				if e := b.note(m.Kind, m.Pos, m.I, int(m.G)); e != "" {
					c.fail("child: %s", e)
				}
				if m.Kind == soakAppended || m.Kind == soakCommitted {
					acks++
				}
			}
		case <-timer.C:
			if killed {
				c.fail("the child's reports went on 30 s after SIGKILL")
				msgs = nil
				break
			}
			ch.kill()
			killed = true
			timer.Reset(30 * time.Second)
		}
	}
	if !ch.wait(t) {
		c.fail("the child exited by itself:\n%s", ch.stderr.String())
	}
	if !ready {
		c.fail("the child's writer.Open did not return in a minute:\n%s", ch.stderr.String())
	}
	if stderr := ch.stderr.String(); bad > 0 || strings.Contains(stderr, "DATA RACE") {
		c.fail("the child reported %d broken promises:\n%s", bad, stderr)
	}
	return acks
}

// soakChild is the child's side of runSoakChild: it runs the workload,
// reporting each outcome as a Msg on stdout (one write of 32 bytes each, so
// a kill never leaves half of one), until it is killed.
func soakChild(spec string) int {
	var o soakOpts
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		fmt.Fprintln(os.Stderr, "soak child:", err)
		return 2
	}
	send := func(m Msg) {
		b := m.Encode()
		_, _ = os.Stdout.Write(b[:])
	}
	w, err := writer.Open(o.Dir, o.writerOpts())
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak child: open:", err)
		return 1
	}
	send(Msg{Kind: MsgReady})
	ctr := new(soakCounters)
	ctr.nextID.Store(o.IDBase)
	note := func(kind byte, p segment.Position, id uint64, size int) {
		send(Msg{Kind: kind, G: uint32(size), I: id, Pos: p})
	}
	bad := func(s string) {
		fmt.Fprintln(os.Stderr, "soak child:", s)
		send(Msg{Kind: soakBad})
		ctr.stop.Store(true)
	}
	// The parent kills within a minute of Open; a child it lost exits.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && !ctr.stop.Load() && ctr.spent.Load() <= o.Budget {
		soakWork(w, o, note, ctr, bad)
		if o.CloseMidAt > 0 {
			break // closed: wait for the kill
		}
	}
	time.Sleep(time.Until(deadline))
	fmt.Fprintln(os.Stderr, "soak child: never killed")
	return 3
}
