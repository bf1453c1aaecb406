package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/verify"
	"golang.org/x/sys/unix"
)

// inputLine is line i of run r of the CLI kill loop's generator: unique,
// varied in length, and every 37th one empty (an empty record).
func inputLine(r, i int) string {
	if i%37 == 36 {
		return ""
	}
	h := mix(RecordID{Run: uint32(r), I: uint64(i)})
	var b strings.Builder
	fmt.Fprintf(&b, "r%d i%d ", r, i)
	for k := range int(h % 120) {
		b.WriteByte(byte('a' + (h>>(k%50)+uint64(k))%26))
	}
	return b.String()
}

// cliRun is one `auditseg write` process fed by a generator.
type cliRun struct {
	cmd     *exec.Cmd
	stderr  strings.Builder
	written atomic.Int64 // lines whose newline was handed to the pipe
	genDone chan error
}

// startWrite starts `auditseg write` on dir and a generator that feeds it
// lines of run r as fast as it reads them, up to limit lines (0: until the
// pipe breaks), then closes stdin.
func startWrite(t *testing.T, bin, dir string, r int, sync string, limit int) *cliRun {
	t.Helper()
	c := &cliRun{genDone: make(chan error, 1)}
	c.cmd = exec.Command(bin, "write", "-q", "--segment-size", "64KiB", "--sync", sync, "--sync-interval", "5ms", dir)
	c.cmd.Stderr = &c.stderr
	pr, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A one-page pipe: a line counts as written only once the command has
	// read nearly all before it, so "written" tracks what it consumed.
	if _, err := unix.FcntlInt(in.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdin = pr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	go func() {
		// Writes end at random places, mid-line included, as a producer
		// that does not write whole lines (cat of a file) would.
		rng := rand.New(rand.NewPCG(uint64(r), 7))
		var buf []byte
		var err error
		for i := 0; limit == 0 || i < limit || len(buf) > 0; {
			for len(buf) < 4096 && (limit == 0 || i < limit) {
				buf = append(buf, inputLine(r, i)...)
				buf = append(buf, '\n')
				i++
			}
			k := min(len(buf), 1+rng.IntN(3000))
			if _, err = in.Write(buf[:k]); err != nil {
				break
			}
			c.written.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
			buf = buf[:copy(buf, buf[k:])]
		}
		in.Close()
		c.genDone <- err
	}()
	return c
}

// end waits for the process and returns how it ended.
func (c *cliRun) end() (code int, sig syscall.Signal) {
	err := c.cmd.Wait()
	<-c.genDone
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return -1, ws.Signal()
		}
		return ws.ExitStatus(), 0
	}
	return 0, 0
}

// checkPrefix reads dir and checks that its records are, run after run, a
// prefix of what each run's generator wrote: nothing invented, repeated,
// reordered or cut. It returns how many lines of each run are present.
func checkPrefix(t *testing.T, dir string, runs int) []int {
	t.Helper()
	got := make([]int, runs+1)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return got // killed before it created the directory
	}
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) {
		if !d.Kind.CrashLeftover() {
			t.Errorf("reader reports damage a crash does not leave: %v", &d)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cur := 1
	for r.Next() {
		rec := r.Record()
		p := string(rec.Payload)
		if p == inputLine(cur, got[cur]) {
			got[cur]++
			continue
		}
		// The first line of a later run (runs may have committed nothing).
		matched := false
		for n := cur + 1; n <= runs; n++ {
			if p == inputLine(n, 0) {
				cur, got[n], matched = n, 1, true
				break
			}
		}
		if want := inputLine(cur, got[cur]); !matched && len(p) < len(want) && strings.HasPrefix(want, p) {
			t.Fatalf("%s: record %v is line %d of run %d cut after %d of its %d bytes", dir, rec.Position, got[cur], cur, len(p), len(want))
		}
		if !matched {
			t.Fatalf("%s: record %v is %.60q; expected line %d of run %d (%.60q) or the first of a later run", dir, rec.Position, p, got[cur], cur, inputLine(cur, got[cur]))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCLIKillLoop feeds `auditseg write` from a generator and ends it with
// SIGKILL at a random instant, with SIGTERM, or with EOF, again and again on
// one directory per chain. After each run the log must be, run by run, a
// prefix of the lines written to the pipe (for EOF: all of them), the next
// run must append after it, and verify must report only crash residue
// after a kill and nothing after a clean end.
func TestCLIKillLoop(t *testing.T) {
	bin := buildBinary(t, "cmd/auditseg")
	n := iterations(30)
	rng := rand.New(rand.NewPCG(seedFor(t), 2))
	const chainLen = 5
	modes := []string{"none", "interval", "always"}
	var kills, terms, eofs, committed, written int
	for it := 0; it < n; {
		dir := filepath.Join(t.TempDir(), "log")
		mode := modes[(it/chainLen)%len(modes)]
		wrote := []int{0}
		for r := 1; r <= chainLen && it < n; r++ {
			it++
			last := r == chainLen || it == n
			limit := 0
			if last {
				limit = 2000 + rng.IntN(3000)
			}
			c := startWrite(t, bin, dir, r, mode, limit)
			term := !last && rng.IntN(4) == 0
			if !last {
				// Kill while records flow: once the command has read some
				// input (writer.Open on a fresh directory takes a while).
				for deadline := time.Now().Add(10 * time.Second); c.written.Load() < 300 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				if term {
					c.cmd.Process.Signal(syscall.SIGTERM)
				} else {
					c.cmd.Process.Signal(syscall.SIGKILL)
				}
			}
			code, sig := c.end()
			wrote = append(wrote, int(c.written.Load()))
			switch {
			case last:
				eofs++
				if code != 0 || sig != 0 {
					t.Fatalf("run %d ended by EOF: exit %d signal %v\n%s", r, code, sig, c.stderr.String())
				}
			case term:
				terms++
				if code != 0 {
					t.Fatalf("run %d ended by SIGTERM: exit %d signal %v, want exit 0\n%s", r, code, sig, c.stderr.String())
				}
			default:
				kills++
				if sig != syscall.SIGKILL {
					t.Fatalf("run %d: exit %d signal %v, want SIGKILL\n%s", r, code, sig, c.stderr.String())
				}
			}
			got := checkPrefix(t, dir, r)
			for k := 1; k <= r; k++ {
				if got[k] > wrote[k] {
					t.Fatalf("%s: run %d has %d lines in the log but wrote only %d", dir, k, got[k], wrote[k])
				}
			}
			if last && got[r] != limit {
				t.Fatalf("%s: run %d wrote %d lines and exited 0, the log holds %d", dir, r, limit, got[r])
			}
			rep, err := verify.Dir(dir, verify.Options{})
			if os.IsNotExist(errors.Unwrap(err)) || err != nil && !fileExists(dir) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if f.Class == verify.Unexpected || sig == syscall.SIGKILL && f.Class == verify.Unfinished && f.Residue {
					continue
				}
				t.Fatalf("%s: after run %d (exit %d, signal %v): verify finding %+v", dir, r, code, sig, f)
			}
			if last {
				for k := 1; k <= r; k++ {
					committed += got[k]
					written += wrote[k]
				}
			}
		}
		os.RemoveAll(filepath.Dir(dir))
	}
	summary(t, "iterations=%d sigkill=%d sigterm=%d eof=%d lines_written_to_pipe=%d lines_in_log=%d; checked: none invented, duplicated or reordered",
		n, kills, terms, eofs, written, committed)
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
