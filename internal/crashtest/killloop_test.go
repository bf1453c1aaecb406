package crashtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/writer"
)

const testSegment = 64 << 10

// seedFor returns the random seed of a test, from AUDITSEG_CRASH_SEED or
// the clock, and logs it so a failure can be replayed.
func seedFor(t *testing.T) uint64 {
	s, err := strconv.ParseUint(os.Getenv("AUDITSEG_CRASH_SEED"), 10, 64)
	if err != nil {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (set AUDITSEG_CRASH_SEED to replay)", s)
	return s
}

// TestKillLoop kills a writer process (8 goroutines appending through
// pkg/writer) over and over: after a random delay, or at an injected kill
// point (crashtest.KillPoints) around rotation, sealing and recovery. The
// runs of a chain share one directory, so each child starts by recovering
// what the previous one left, sometimes while being killed itself. After
// every kill the log is checked (checkCrashed); at the end of each chain
// the test itself reopens, appends and closes, after which verify must
// find nothing at all.
func TestKillLoop(t *testing.T) {
	bin := buildBinary(t, "internal/crashtest/crashchild")
	n := iterations(60)
	rng := rand.New(rand.NewPCG(seedFor(t), 1))
	const chainLen = 6
	modes := []string{"none", "interval", "always"}
	var (
		dir        string
		led        *ledger
		run        uint32
		sealedUpTo uint64
		kp         int
		injected   int // injected kill points reached
		missed     int // injected kill points never reached (killed by the parent instead)
		beforeOpen int // kills that landed before writer.Open returned
		acked      int
		chains     int
		perMode    = map[string]int{}
	)
	endChain := func() {
		if dir == "" {
			return
		}
		run++
		recoverAndCheck(t, dir, led, run, writer.Options{SegmentSize: testSegment})
		acked += led.n
		chains++
		os.RemoveAll(dir)
	}
	for it := range n {
		if it%chainLen == 0 {
			endChain()
			dir = filepath.Join(t.TempDir(), fmt.Sprintf("log%d", it))
			led, run, sealedUpTo = newLedger(), 0, 0
		}
		mode := modes[(it/chainLen)%len(modes)]
		run++
		ackedBefore := led.n
		var env []string
		// Most kills land while records flow (the delay counts from
		// writer.Open returning); some during start-up and recovery.
		delay := time.Duration(rng.Int64N(int64(30 * time.Millisecond)))
		fromStart := rng.IntN(4) == 0
		point := ""
		if it%3 == 2 {
			fromStart = true
			point = KillPoints[kp%len(KillPoints)]
			kp++
			// SyncNone never flushes after Open (sealing leaves the
			// writeback to the kernel): take the next point.
			for mode == "none" && (strings.HasPrefix(point, "msync") || strings.HasPrefix(point, "seal")) {
				point = KillPoints[kp%len(KillPoints)]
				kp++
			}
			env = []string{KillEnv + "=" + point}
			delay = 400 * time.Millisecond // the point was not reached: kill anyway
		}
		c := startChild(t, bin, env, "-dir", dir, "-run", strconv.Itoa(int(run)), "-sync", mode,
			"-segment-size", strconv.Itoa(testSegment), "-seed", strconv.FormatUint(rng.Uint64(), 10))
		timer := time.AfterFunc(time.Hour, c.kill)
		if fromStart {
			timer.Reset(delay)
		}
		ready, self := false, false
		var ackErr error
		for m := range c.msgs {
			switch m.Kind {
			case MsgReady:
				ready = true
				if !fromStart {
					timer.Reset(delay)
				}
			case MsgKill:
				self = true
			case MsgAck:
				if err := led.ack(run, m); err != nil && ackErr == nil {
					ackErr = err
				}
			}
		}
		timer.Stop()
		if !c.wait(t) {
			t.Fatalf("iteration %d: the child exited by itself\n%s", it, c.stderr.String())
		}
		if ackErr != nil {
			t.Fatal(ackErr)
		}
		switch {
		case point != "" && self:
			injected++
		case point != "":
			missed++
			t.Logf("iteration %d: kill point %s not reached in %v (sync %s); killed by the parent", it, point, delay, mode)
		}
		if !ready {
			beforeOpen++
		}
		perMode[mode] += led.n - ackedBefore
		sealedUpTo, _ = checkCrashed(t, dir, led, sealedUpTo)
		if t.Failed() {
			t.Fatalf("iteration %d (sync %s, kill point %q, delay %v) failed; the log is in %s", it, mode, point, delay, dir)
		}
	}
	endChain()
	summary(t, "iterations=%d chains=%d kills=%d injected_points_reached=%d injected_points_missed=%d killed_before_open_returned=%d acknowledged=%d (by sync mode: %v); checked: none lost, no verify finding but crash residue",
		n, chains, n, injected, missed, beforeOpen, acked, perMode)
}
