package soak

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Environment of a run; see the package comment.
const (
	seedsEnv    = "AUDITSEG_SOAK_SEEDS"
	durationEnv = "AUDITSEG_SOAK_DURATION"
	keepEnv     = "AUDITSEG_SOAK_KEEP"
	stopEnv     = "AUDITSEG_SOAK_STOP"
	longHoldEnv = "AUDITSEG_SOAK_LONGHOLD"
	childEnv    = "AUDITSEG_SOAK_CHILD" // set for the writer child only
)

// TestMain runs the writer child when the soak re-executes this binary as
// one (runChild), the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		childWriter(spec)
		return
	}
	os.Exit(m.Run())
}

// parseSeeds parses "1-4,9": ranges and single seeds.
func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		x, err := strconv.ParseUint(a, 10, 64)
		y := x
		if err == nil && isRange {
			y, err = strconv.ParseUint(b, 10, 64)
		}
		if err != nil || y < x {
			return nil, fmt.Errorf("%s=%q: want seeds like 1-4,9", seedsEnv, s)
		}
		for i := x; i <= y; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// TestSoak runs the seeded sessions: by default two seeds (one with
// -short), the seeds of $AUDITSEG_SOAK_SEEDS if set, and then new seeds
// until $AUDITSEG_SOAK_DURATION has passed.
func TestSoak(t *testing.T) {
	spec := "1-2"
	if testing.Short() {
		spec = "1"
	}
	if s := os.Getenv(seedsEnv); s != "" {
		spec = s
	}
	seeds, err := parseSeeds(spec)
	if err != nil {
		t.Fatal(err)
	}
	var dur time.Duration
	if s := os.Getenv(durationEnv); s != "" {
		if dur, err = time.ParseDuration(s); err != nil {
			t.Fatalf("%s: %v", durationEnv, err)
		}
	}
	start := time.Now()
	n := 0
	for i := 0; ; i++ {
		seed := seeds[min(i, len(seeds)-1)]
		if i >= len(seeds) {
			if time.Since(start) > dur {
				break
			}
			seed += uint64(i - len(seeds) + 1)
		}
		ok := t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			soakSeed(t, seed, raceEnabled)
			if t.Failed() {
				t.Logf("replay: %s=%d go test -run 'TestSoak$' ./internal/soak", seedsEnv, seed)
			}
		})
		n++
		if !ok && os.Getenv(stopEnv) != "" {
			break
		}
	}
	t.Logf("%d seeds in %v", n, time.Since(start).Round(time.Millisecond))
}

func soakSeed(t *testing.T, seed uint64, race bool) {
	rng := rand.New(rand.NewPCG(seed, 0x6806))
	root := t.TempDir()
	if k := os.Getenv(keepEnv); k != "" {
		root = filepath.Join(k, fmt.Sprintf("seed%d", seed))
		os.RemoveAll(root)
		os.MkdirAll(root, 0o755)
	}
	dir := filepath.Join(root, "log")
	b := newBook()
	var nextID atomic.Uint64
	nextID.Store(seed << 40)
	sessions := 2 + rng.IntN(3)
	for s := 0; s < sessions; s++ {
		o := randOpts(rng, seed, dir, race)
		o.IDBase = (seed << 40) + uint64(s+1)<<32
		nextID.Store(o.IDBase)
		crash := rng.IntN(2) == 0
		tag := fmt.Sprintf("seed %d session %d (crash=%v seg=%d max=%d sync=%v ival=%v g=%d ops=%d closeMid=%v hold=%v longhold=%v)",
			seed, s, crash, o.SegmentSize, o.MaxRecord, writer.SyncMode(o.Sync), o.SyncInterval, o.Goroutines, o.Ops, o.CloseMidAt, o.HoldRes, o.LongHold)
		t.Log(tag)
		c := &checker{t: t, tag: tag}
		bad := func(s string) { c.fail("%s", s) }
		var badMu sync.Mutex
		badSafe := func(s string) { badMu.Lock(); bad(s); badMu.Unlock() }

		// prefill, sequentially, with the session's options
		w, err := writer.Open(dir, o.writerOpts())
		if err != nil {
			c.fail("open: %v", err)
			return
		}
		if st := w.Recovered(); st.DamagedSegments != 0 {
			c.fail("open recovered damaged segments: %+v", st)
		}
		pre := rng.IntN(6)
		var preTimes []Position
		for i := 0; i < pre; i++ {
			id := nextID.Add(1)
			size := rng.IntN(min(effMax(o), 200) + 1)
			p, err := w.Append(payload(id, size))
			if err != nil {
				c.fail("prefill append: %v", err)
				break
			}
			b.note("A", p, id, size)
			preTimes = append(preTimes, p)
			if i == pre/2 {
				time.Sleep(3 * time.Millisecond)
			}
		}
		var wtr *writer.Writer = w
		if crash {
			if err := w.Close(); err != nil {
				c.fail("close after prefill: %v", err)
			}
			wtr = nil
		}
		before, _, err := readAll(dir, reader.First())
		if err != nil {
			c.fail("read before: %v", err)
		}

		// the follower, with a start whose expected output is exact
		f := &follower{}
		var wantFrom func(final []readRec) []readRec
		switch k := rng.IntN(5); {
		case k == 0 || len(before) == 0:
			f.desc, f.start = "First", reader.First()
			wantFrom = func(final []readRec) []readRec { return final }
		case k == 1:
			nl := uint64(rng.IntN(len(before) + 2))
			if rng.IntN(3) == 0 {
				nl = 0
			}
			f.desc, f.start = fmt.Sprintf("Last(%d)", nl), reader.Last(nl)
			cut := max(0, len(before)-int(nl))
			var from Position
			if cut < len(before) {
				from = before[cut].Pos
			} else {
				from = Position{Seq: before[len(before)-1].Pos.Seq, Offset: before[len(before)-1].Pos.Offset + 1}
			}
			wantFrom = func(final []readRec) []readRec { return after(final, from, true) }
		case k == 2:
			p := before[rng.IntN(len(before))].Pos
			f.desc, f.start = fmt.Sprintf("After(%v)", p), reader.After(p)
			wantFrom = func(final []readRec) []readRec { return after(final, p, false) }
		case k == 3:
			p := before[rng.IntN(len(before))].Pos
			f.desc, f.start = fmt.Sprintf("At(%v)", p), reader.At(p)
			wantFrom = func(final []readRec) []readRec { return after(final, p, true) }
		default:
			ts := before[rng.IntN(len(before))].Time
			f.desc, f.since = fmt.Sprintf("Since(%d)", ts), time.Unix(0, ts)
			wantFrom = func(final []readRec) []readRec {
				var out []readRec
				for _, r := range final {
					if r.Time >= ts {
						out = append(out, r)
					}
				}
				return out
			}
		}
		c.tag += " follower=" + f.desc
		if err := startFollower(dir, f); err != nil {
			c.fail("follower open: %v", err)
			return
		}
		arch := (*archiver)(nil)
		if rng.IntN(3) != 0 {
			arch = startArchiver(dir, rng)
		}

		var stop atomic.Bool
		if !crash {
			work(wtr, o, b.note, &nextID, &stop, badSafe)
			cerr := wtr.Close()
			unfinished := errors.Is(cerr, writer.ErrReservationsOpen)
			if cerr != nil && !unfinished {
				c.fail("Close: %v", cerr)
			}
			if unfinished {
				c.t.Logf("%s: Close gave up: %v", tag, cerr)
			}
			if arch != nil {
				for _, e := range arch.stop() {
					c.fail("%s", e)
				}
			}
			final := c.checkLog(dir, b, false, unfinished)
			c.verifyDir(dir, unfinished)
			want := wantFrom(final)
			if len(want) > 0 && !f.waitFor(want[len(want)-1].Pos, 15*time.Second) {
				c.t.Logf("%s: follower did not reach %v", tag, want[len(want)-1].Pos)
			}
			f.stop()
			c.checkFollower(f, final, want)
		} else {
			killAfter := time.Duration(20+rng.IntN(600)) * time.Millisecond
			o.IDBase = nextID.Load() + 1
			acks, err := runChild(t, o, b, killAfter, badSafe)
			if err != nil {
				c.fail("child: %v", err)
				return
			}
			if arch != nil {
				for _, e := range arch.stop() {
					c.fail("%s", e)
				}
			}
			c.tag += fmt.Sprintf(" killAfter=%v acks=%d", killAfter, acks)
			// keep a pristine copy of the crashed log
			cp := filepath.Join(root, fmt.Sprintf("crash%d", s))
			copyTree(t, dir, cp)
			c.verifyDir(dir, true)
			c.checkLog(dir, b, true, true)
			// reopen the copy: recovery must keep every record and leave a clean log
			w2, err := writer.Open(cp, writer.Options{SegmentSize: o.SegmentSize, Sync: writer.SyncNone})
			if err != nil {
				c.fail("reopen copy: %v", err)
			} else {
				if st := w2.Recovered(); st.DamagedSegments != 0 {
					c.fail("recovery of copy: damaged segments: %+v", st)
				}
				if err := w2.Close(); err != nil {
					c.fail("close recovered copy: %v", err)
				}
				c.verifyDir(cp, false)
				c.checkLog(cp, b, true, false)
			}
			// and the original: reopened by the next session (or here, last)
			if s == sessions-1 {
				w3, err := writer.Open(dir, writer.Options{SegmentSize: o.SegmentSize})
				if err != nil {
					c.fail("reopen: %v", err)
					return
				}
				if st := w3.Recovered(); st.DamagedSegments != 0 {
					c.fail("recovery: damaged segments: %+v", st)
				}
				if err := w3.Close(); err != nil {
					c.fail("close after recovery: %v", err)
				}
				c.verifyDir(dir, false)
			}
			final := c.checkLog(dir, b, true, s != sessions-1)
			// the follower: what it delivered must be the log's records in
			// order, from its start, and (once the log is quiescent) all of
			// them.
			want := wantFrom(final)
			if len(want) > 0 && !f.waitFor(want[len(want)-1].Pos, 15*time.Second) {
				c.t.Logf("%s: follower did not reach %v", c.tag, want[len(want)-1].Pos)
			}
			f.stop()
			c.checkFollower(f, final, want)
		}
		// a crash round: records of the crashed session that were never
		// acknowledged stay "maybe"; mark them resolved by the log content
		resolve(b, dir)
		if len(c.errs) > 0 && os.Getenv(stopEnv) != "" {
			return
		}
	}
}

// after returns the records of final at or after (incl) / strictly after p.
func after(final []readRec, p Position, incl bool) []readRec {
	i := sort.Search(len(final), func(i int) bool {
		c := final[i].Pos.Compare(p)
		return c > 0 || incl && c == 0
	})
	return final[i:]
}

// resolve settles the book after a session: what is in the log is acked
// (and must stay), what is not is dropped (it must never appear).
func resolve(b *book, dir string) {
	recs, _, _ := readAll(dir, reader.First())
	b.mu.Lock()
	defer b.mu.Unlock()
	in := map[Position]readRec{}
	for _, r := range recs {
		in[r.Pos] = r
	}
	for p, e := range b.byPos {
		if _, ok := in[p]; ok {
			if e.st != stAborted && e.st != stNotCommited {
				e.st, e.beforeKill = stAcked, true
			}
		} else if e.st != stAcked {
			e.st = stNotCommited
		}
	}
	for p, r := range in {
		if b.byPos[p] == nil {
			b.byPos[p] = &entry{size: len(r.Data), st: stAcked, beforeKill: true, data: r.Data}
		}
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		bs, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), bs, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
