package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

type soakRec struct {
	Pos  segment.Position
	Time int64
	Data []byte
}

func soakReadAll(dir string) ([]soakRec, []reader.Damage, error) {
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{Start: reader.First(), OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []soakRec
	for r.Next() {
		rec := r.Record()
		out = append(out, soakRec{rec.Position, rec.Time.UnixNano(), append([]byte(nil), rec.Payload...)})
	}
	return out, dmg, r.Err()
}

// soakFollower is a reader in Follow mode, started before the session's
// writes, whose start (First, Last(n), After, At, Since) selects an exact
// part of the final log.
type soakFollower struct {
	desc   string
	start  reader.Start
	since  time.Time
	mu     sync.Mutex
	got    []soakRec
	dmg    []reader.Damage
	err    error
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (f *soakFollower) run(dir string) error {
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
				f.got = append(f.got, soakRec{rec.Position, rec.Time.UnixNano(), append([]byte(nil), rec.Payload...)})
				f.mu.Unlock()
			}
			err := r.Err()
			if err == nil {
				if err = r.Wait(ctx); ctx.Err() != nil {
					return
				}
			}
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
		}
	}()
	return nil
}

// waitFor waits, up to d, until the follower has delivered pos or a later
// record, or failed.
func (f *soakFollower) waitFor(pos segment.Position, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.got)
		ok := n > 0 && f.got[n-1].Pos.Compare(pos) >= 0
		failed := f.err != nil
		f.mu.Unlock()
		if ok || failed {
			return ok
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// stop ends the follower; a session stops it on every path, once.
func (f *soakFollower) stop() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
}

// soakArchiver runs archive.Run (compress-finished) in a loop under the
// writer and the follower.
type soakArchiver struct {
	stopc chan struct{}
	done  chan struct{}
	errs  []string
	runs  int
}

func startSoakArchiver(dir string, rng *rand.Rand) *soakArchiver {
	a := &soakArchiver{stopc: make(chan struct{}), done: make(chan struct{})}
	pause := time.Duration(2+rng.IntN(40)) * time.Millisecond
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.stopc:
				return
			case <-time.After(pause):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			res, err := archive.Run(ctx, dir, archive.Options{Jobs: 1})
			cancel()
			a.runs++
			if err == nil {
				err = res.Err()
			}
			if err != nil {
				a.errs = append(a.errs, "archive.Run: "+err.Error())
			}
		}
	}()
	return a
}

// stop returns the archiver's errors, once its current run has ended.
func (a *soakArchiver) stop() []string {
	if a == nil {
		return nil
	}
	close(a.stopc)
	<-a.done
	return a.errs
}

// soakChecker reports failures of one session, each naming the seed and
// how to replay it.
type soakChecker struct {
	t      *testing.T
	tag    string
	mu     sync.Mutex
	failed bool
}

func (c *soakChecker) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = true
	c.t.Errorf("%s: %s", c.tag, fmt.Sprintf(format, args...))
}

// checkLog reads dir and checks it against the book: positions strictly
// increasing, each payload one this soak wrote and intact, no id twice,
// nothing aborted or refused read as data, every acknowledged record
// present. crash allows records the book never heard of (acknowledged as
// the child died) and reservations it never heard settled; leftover allows
// the damage reports a crash leaves.
func (c *soakChecker) checkLog(dir string, b *soakBook, crash, leftover bool) []soakRec {
	recs, dmg, err := soakReadAll(dir)
	if err != nil {
		c.fail("read %s: %v", dir, err)
	}
	for _, d := range dmg {
		if !leftover || !d.Kind.CrashLeftover() {
			c.fail("read %s: damage %v", dir, &d)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[segment.Position]bool{}
	ids := map[uint64]segment.Position{}
	for i, r := range recs {
		if i > 0 && r.Pos.Compare(recs[i-1].Pos) <= 0 {
			c.fail("record %d at %v not after %v", i, r.Pos, recs[i-1].Pos)
		}
		seen[r.Pos] = true
		if id, ok := soakOwnPayload(r.Data); !ok {
			c.fail("record at %v (%d bytes) is not a payload the soak wrote", r.Pos, len(r.Data))
		} else if len(r.Data) >= 8 {
			if p, dup := ids[id]; dup {
				c.fail("record id %d at %v and again at %v", id, p, r.Pos)
			}
			ids[id] = r.Pos
		}
		e := b.byPos[r.Pos]
		switch {
		case e == nil:
			if !crash {
				c.fail("record at %v (%d bytes) was never handed out by the writer", r.Pos, len(r.Data))
			}
		case e.st == stAborted || e.st == stRefused:
			c.fail("record at %v is data although its reservation was aborted or refused (state %d)", r.Pos, e.st)
		case !crash && e.st == stReserved:
			c.fail("record at %v read, but its reservation was never committed", r.Pos)
		case e.data != nil:
			if string(r.Data) != string(e.data) {
				c.fail("record at %v changed: %d bytes, was %d", r.Pos, len(r.Data), len(e.data))
			}
		case len(r.Data) != e.size || string(r.Data) != string(soakPayload(e.id, e.size)):
			c.fail("record at %v: %d bytes read, want id %d of %d bytes", r.Pos, len(r.Data), e.id, e.size)
		}
	}
	var lost []string
	for p, e := range b.byPos {
		if e.st == stAcked && !seen[p] {
			lost = append(lost, fmt.Sprintf("%v(%dB)", p, e.size))
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		c.fail("%d acknowledged records missing from %s, e.g. %v", len(lost), dir, lost[:min(5, len(lost))])
	}
	return recs
}

// verifyDir runs verify over dir: exit 0, or 3 (crash residue) when
// residue is allowed.
func (c *soakChecker) verifyDir(dir string, residue bool) {
	rep, err := verify.Dir(dir, verify.Options{Workers: 1})
	if err != nil {
		c.fail("verify %s: %v", dir, err)
		return
	}
	code := rep.ExitCode(false)
	if code == verify.ExitClean || (code == 3 && residue) {
		return
	}
	var fs []string
	for _, f := range rep.Findings[:min(8, len(rep.Findings))] {
		j, _ := json.Marshal(f)
		fs = append(fs, string(j))
	}
	c.fail("verify %s: exit %d (residue allowed: %v):\n  %s", dir, code, residue, strings.Join(fs, "\n  "))
}

// checkFollower: f delivered exactly want (the final log's records its
// start selects), in order, and reported no damage but crash leftovers.
func (c *soakChecker) checkFollower(f *soakFollower, want []soakRec) {
	if len(want) > 0 && !f.waitFor(want[len(want)-1].Pos, 15*time.Second) {
		c.t.Logf("%s: the follower did not reach %v in 15 s", c.tag, want[len(want)-1].Pos)
	}
	f.stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		c.fail("follower %s: %v", f.desc, f.err)
	}
	for _, d := range f.dmg {
		if !d.Kind.CrashLeftover() {
			c.fail("follower %s: damage %v", f.desc, &d)
		}
	}
	for i := range min(len(f.got), len(want)) {
		if f.got[i].Pos != want[i].Pos || string(f.got[i].Data) != string(want[i].Data) {
			c.fail("follower %s: record %d is %v (%dB), want %v (%dB) [got %d, want %d records]",
				f.desc, i, f.got[i].Pos, len(f.got[i].Data), want[i].Pos, len(want[i].Data), len(f.got), len(want))
			return
		}
	}
	switch {
	case len(f.got) > len(want):
		c.fail("follower %s: delivered %d records, want %d; first extra %v", f.desc, len(f.got), len(want), f.got[len(want)].Pos)
	case len(f.got) < len(want):
		c.fail("follower %s: delivered %d records, want %d; first missing %v", f.desc, len(f.got), len(want), want[len(f.got)].Pos)
	}
}

// soakFrom returns the records of final at or after p (incl), or strictly
// after it.
func soakFrom(final []soakRec, p segment.Position, incl bool) []soakRec {
	i := sort.Search(len(final), func(i int) bool {
		c := final[i].Pos.Compare(p)
		return c > 0 || incl && c == 0
	})
	return final[i:]
}

// resolve settles the book after a session: what is in the log is
// acknowledged from now on (it must stay), what is not can never appear.
func (b *soakBook) resolve(recs []soakRec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	in := map[segment.Position]soakRec{}
	for _, r := range recs {
		in[r.Pos] = r
	}
	for p, e := range b.byPos {
		if _, ok := in[p]; ok {
			if e.st != stAborted && e.st != stRefused {
				e.st = stAcked
			}
		} else if e.st != stAcked {
			e.st = stRefused
		}
	}
	for p, r := range in {
		if b.byPos[p] == nil {
			b.byPos[p] = &soakEntry{size: len(r.Data), st: stAcked, data: r.Data}
		}
	}
}
