package archive_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
)

// The crash tests run the protocol in a child process (this test binary,
// re-executed to run only TestKillChild) and SIGKILL it. The child prints
// one line per Observer event. In lock-step mode it then waits for a byte
// on stdin before going on, so the parent kills it exactly between two
// steps; otherwise it runs freely and is killed after a random delay,
// which lands inside steps (half-written temp files, and so on).
//
// Environment of the child (set only by these tests):
//
//	AUDITSEG_ARCHIVE_CHILD_DIR       the log directory to compress
//	AUDITSEG_ARCHIVE_CHILD_LOCKSTEP  "1" for lock-step mode
//	AUDITSEG_ARCHIVE_CHILD_JOBS      Options.Jobs
//	AUDITSEG_ARCHIVE_CHILD_LINKKILL  "1": renames by link and unlink
//	                                 (crashtest.FaultFS.NoRenameNoReplace),
//	                                 SIGKILLed between the two
const (
	childDirEnv      = "AUDITSEG_ARCHIVE_CHILD_DIR"
	childLockstepEnv = "AUDITSEG_ARCHIVE_CHILD_LOCKSTEP"
	childJobsEnv     = "AUDITSEG_ARCHIVE_CHILD_JOBS"
	childLinkKillEnv = "AUDITSEG_ARCHIVE_CHILD_LINKKILL"
)

func TestKillChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("helper process of the kill tests; it runs only as their child")
	}
	lockstep := os.Getenv(childLockstepEnv) == "1"
	jobs, _ := strconv.Atoi(os.Getenv(childJobsEnv))
	in := bufio.NewReader(os.Stdin)
	var fs archive.FS
	if os.Getenv(childLinkKillEnv) == "1" {
		fs = &crashtest.FaultFS{NoRenameNoReplace: true, Before: func(c crashtest.Call) {
			// In a clean run the first temporary name removed is the
			// unlink after the link.
			if c.Op == crashtest.OpRemove && strings.HasSuffix(c.Path, segment.TempExt) {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}}
	}
	res, err := archive.Run(context.Background(), dir, archive.Options{Jobs: jobs, FS: fs, Observer: func(ev archive.Event) {
		fmt.Printf("STEP %s %d\n", ev.Step, ev.Seq)
		if lockstep {
			if _, err := in.ReadByte(); err != nil {
				os.Exit(3)
			}
		}
	}})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		os.Exit(1)
	}
	fmt.Println("DONE")
	os.Exit(0)
}

// child is one run of the protocol in a child process.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
}

func startChild(t *testing.T, dir string, lockstep bool, jobs int, env ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")}
	ls := "0"
	if lockstep {
		ls = "1"
	}
	c.cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childLockstepEnv+"="+ls, childJobsEnv+"="+strconv.Itoa(jobs))
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stderr = &c.stderr
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewScanner(out)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// runUntil runs a lock-step child and kills it with SIGKILL right after it
// reports step number killAt (1-based), before the next step starts. It
// returns the steps seen and whether the child finished on its own first.
func runUntil(t *testing.T, dir string, killAt int) (steps []string, finished bool) {
	t.Helper()
	c := startChild(t, dir, true, 1)
	killed := false
	for c.out.Scan() {
		line := c.out.Text()
		if line == "DONE" {
			finished = true
			continue
		}
		step, ok := strings.CutPrefix(line, "STEP ")
		if !ok {
			continue // test framework chatter
		}
		steps = append(steps, step)
		if len(steps) == killAt {
			if err := c.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
			break
		}
		if _, err := c.in.Write([]byte{'\n'}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.cmd.Wait()
	switch {
	case killed && !isKilled(err):
		t.Fatalf("child: %v, want killed\n%s", err, c.stderr.String())
	case !killed && (err != nil || !finished):
		t.Fatalf("child failed after %v: %v\n%s", steps, err, c.stderr.String())
	}
	return steps, finished
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && strings.Contains(ee.Error(), "killed")
}

// recoverAndCheck is what must hold after every kill: the invariant right
// away, then a complete next run, then every record readable exactly once.
func recoverAndCheck(t *testing.T, fx *fixture, what string) {
	t.Helper()
	fx.checkSafe(t)
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 2})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: next run: %v", what, err)
	}
	fx.checkFinal(t)
}

// Kill at every step boundary of a run on a clean directory: before and
// after the temp file is written, synced, verified, renamed, the directory
// synced, the original removed.
func TestKillPoints(t *testing.T) {
	pristine := newFixture(t, 4, segSize)
	killPoints(t, pristine, 1+3*8)
}

// Kill at every step boundary of a run that first cleans up an interrupted
// one: a leftover temp file, an original beside a good archive, and one
// beside an archive that does not verify.
func TestKillPointsWithLeftovers(t *testing.T) {
	pristine := newFixture(t, 5, segSize)
	writeFile(t, pristine.zst(1), compressed(t, pristine.files[1]))
	bad := compressed(t, pristine.files[2])
	bad[len(bad)/3] ^= 0x08
	writeFile(t, pristine.zst(2), bad)
	good := compressed(t, pristine.files[3])
	writeFile(t, pristine.zst(3)+segment.TempExt, good[:len(good)-7])
	// planned, temp-removed, 1: 5 steps (resolved), 2: 9 (archive removed,
	// then compressed), 3 and 4: 8 each.
	killPoints(t, pristine, 1+1+5+9+8+8)
}

func killPoints(t *testing.T, pristine *fixture, wantSteps int) {
	t.Helper()
	// Kill points are independent: run them side by side (mostly fsync
	// waits), each on its own copy of the directory.
	for killAt := 1; killAt <= wantSteps+1; killAt++ {
		t.Run(fmt.Sprintf("after-step-%d", killAt), func(t *testing.T) {
			t.Parallel()
			fx := pristine.clone(t)
			steps, finished := runUntil(t, fx.dir, killAt)
			switch {
			case finished && killAt <= wantSteps:
				t.Fatalf("the run finished after %d steps, want %d: %v", len(steps), wantSteps, steps)
			case finished:
				fx.checkFinal(t)
			case killAt > wantSteps:
				t.Fatalf("the run has more than %d steps: %v", wantSteps, steps)
			default:
				recoverAndCheck(t, fx, "killed after "+steps[len(steps)-1])
			}
		})
	}
}

// Kill a free-running child with two jobs at random instants, which land
// inside steps as well as between them.
func TestKillAnytime(t *testing.T) {
	pristine := newFixture(t, 6, 8*segSize)
	// How long does a whole run take here?
	fx := pristine.clone(t)
	start := time.Now()
	c := startChild(t, fx.dir, false, 2)
	for c.out.Scan() {
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	full := time.Since(start)
	fx.checkFinal(t)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 8 {
		fx := pristine.clone(t)
		c := startChild(t, fx.dir, false, 2)
		delay := time.Duration(rng.Int64N(int64(full)))
		time.Sleep(delay)
		c.cmd.Process.Kill()
		var last string
		for c.out.Scan() {
			last = c.out.Text()
		}
		c.cmd.Wait()
		recoverAndCheck(t, fx, fmt.Sprintf("kill %d after %v (last output %q)", i, delay, last))
	}
}
