package crashtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFollowUnderChurn runs `auditseg tail -f -n +1` while, underneath it,
// a writer process appends from 8 goroutines across many rotations and is
// killed, a second one recovers the log and appends to the end, and
// `auditseg compress-finished` runs in a loop, archiving sealed segments
// and removing their originals. tail must print every acknowledged record
// exactly once and in each goroutine's order: for the killed run a prefix
// of each goroutine's records at least as long as what was acknowledged,
// for the finished run all of them.
func TestFollowUnderChurn(t *testing.T) {
	auditseg := buildBinary(t, "cmd/auditseg")
	childBin := buildBinary(t, "internal/crashtest/crashchild")
	rounds := max(iterations(20)/20, 1)
	rng := rand.New(rand.NewPCG(seedFor(t), 4))
	var total, compressions, archives int
	for round := range rounds {
		n, c := followRound(t, auditseg, childBin, rng, round, &archives)
		total += n
		compressions += c
	}
	summary(t, "rounds=%d records_followed=%d compress_runs=%d segments_archived_under_tail=%d; checked: none duplicated, missing or out of order", rounds, total, compressions, archives)
}

func followRound(t *testing.T, auditseg, childBin string, rng *rand.Rand, round int, archives *int) (records, compressions int) {
	dir := filepath.Join(t.TempDir(), "log")
	const perG = 4000

	// Run 1: appends until killed. tail starts once the log exists.
	led := newLedger()
	c1 := startChild(t, childBin, nil, "-dir", dir, "-run", "1", "-sync", "none",
		"-segment-size", strconv.Itoa(testSegment), "-seed", strconv.FormatUint(rng.Uint64(), 10))
	m := <-c1.msgs
	if m.Kind != MsgReady {
		c1.kill()
		c1.wait(t)
		t.Fatalf("child: %c, want ready\n%s", m.Kind, c1.stderr.String())
	}
	tail := exec.Command(auditseg, "tail", "-f", "-n", "+1", "--framing", "u32be", dir)
	var tailErr strings.Builder
	tail.Stderr = &tailErr
	out, err := tail.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	defer tail.Process.Kill()
	got := make(chan RecordID, 1<<16)
	readErr := make(chan error, 1)
	go func() {
		defer close(got)
		br := bufio.NewReaderSize(out, 1<<16)
		var hdr [4]byte
		for {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr <- err
				}
				return
			}
			p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(br, p); err != nil {
				readErr <- err
				return
			}
			id, err := ParseRecord(p)
			if err != nil {
				readErr <- err
				return
			}
			got <- id
		}
	}()

	// compress-finished in a loop until the end of the round.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var compressErr error
	crng := rand.New(rand.NewPCG(rng.Uint64(), 5))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			cmd := exec.Command(auditseg, "compress-finished", "-j", "1", dir)
			outb, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !(errors.As(err, &ee) && strings.Contains(string(outb), "another")) {
				compressErr = fmt.Errorf("compress-finished: %v\n%s", err, outb)
				return
			}
			compressions++
			time.Sleep(time.Duration(5+crng.IntN(20)) * time.Millisecond)
		}
	}()

	// Collect what tail prints while the writers run.
	seen := map[gkey]uint64{}
	printed := 0
	take := func(id RecordID) {
		k := gkey{id.Run, id.G}
		if id.I != seen[k] {
			t.Fatalf("round %d: tail printed %v after %d records of that goroutine (duplicate, gap or reorder)", round, id, seen[k])
		}
		seen[k]++
		printed++
	}
	drain := func(until func() bool, d time.Duration) {
		deadline := time.After(d)
		for !until() {
			select {
			case id, ok := <-got:
				if !ok {
					t.Fatalf("round %d: tail exited: %v\n%s", round, <-readErr, tailErr.String())
				}
				take(id)
			case <-deadline:
				return
			}
		}
	}

	time.AfterFunc(time.Duration(50+rng.IntN(150))*time.Millisecond, c1.kill)
	for m := range c1.msgs {
		if m.Kind == MsgAck {
			if err := led.ack(1, m); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case id := <-got:
			take(id)
		default:
		}
	}
	if !c1.wait(t) {
		t.Fatalf("run 1 was not killed\n%s", c1.stderr.String())
	}

	// Run 2: recovers the killed run's segment and appends perG records
	// from each goroutine, then closes.
	c2 := startChild(t, childBin, nil, "-dir", dir, "-run", "2", "-sync", "none", "-records", strconv.Itoa(perG), "-pace", "2ms",
		"-segment-size", strconv.Itoa(testSegment), "-seed", strconv.FormatUint(rng.Uint64(), 10))
	for m := range c2.msgs {
		if m.Kind == MsgAck {
			if err := led.ack(2, m); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case id := <-got:
			take(id)
		default:
		}
	}
	if c2.wait(t) {
		t.Fatal("run 2 was killed")
	}
	complete := func() bool {
		for g := range uint32(8) {
			if seen[gkey{2, g}] < perG {
				return false
			}
		}
		return true
	}
	drain(complete, 60*time.Second)
	stop()
	wg.Wait()
	if compressErr != nil {
		t.Fatal(compressErr)
	}
	if !complete() {
		t.Fatalf("round %d: tail printed %v of run 2's records after 60 s (want %d per goroutine)\n%s", round, seen, perG, tailErr.String())
	}
	drain(func() bool { return false }, 200*time.Millisecond) // nothing more may come
	tail.Process.Signal(syscall.SIGTERM)
	for id := range got {
		take(id)
	}
	if err := tail.Wait(); err != nil {
		t.Fatalf("round %d: tail -f after SIGTERM: %v\n%s", round, err, tailErr.String())
	}
	for k, ps := range led.acked {
		if seen[k] < uint64(len(ps)) {
			t.Fatalf("round %d: run %d goroutine %d: tail printed %d records, %d were acknowledged", round, k.run, k.g, seen[k], len(ps))
		}
	}
	archived, _ := filepath.Glob(filepath.Join(dir, "*.seg.zst"))
	if len(archived) == 0 {
		t.Fatalf("round %d: compress-finished ran %d times and archived nothing", round, compressions)
	}
	*archives += len(archived)
	return printed, compressions
}
