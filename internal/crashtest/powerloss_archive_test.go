package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestPowerLossDuringCompressFinished cuts the power of a real
// `auditseg compress-finished` on ext4, as TestPowerLossExt4 cuts the
// writer's (same loop device, same copy of the device while the process
// is stopped), at a random instant of its run over 120 sealed segments
// made durable before it starts (syncfs). On the copy, mounted: every
// segment is there as its original or its archive (the reader returns
// every record written, at its position, intact, and reports no damage),
// verify finds nothing, and a second run on the copy finishes the work
// (exit 0) and leaves the same records and a clean verify.
func TestPowerLossDuringCompressFinished(t *testing.T) {
	requireLoop(t)
	bin := buildBinary(t, "cmd/auditseg")
	rng := rand.New(rand.NewPCG(seedFor(t), 8))
	rounds := max(iterations(12)/3, 1)
	var archived, tornRounds, tornCopies, finished int
	for r := range rounds {
		if d, ok := t.Deadline(); ok && time.Until(d) < 30*time.Second {
			t.Fatalf("out of time before round %d", r)
		}
		seed := rng.Uint64()
		ok := t.Run(fmt.Sprint(r), func(t *testing.T) {
			a, torn, copies, done := compressPowerLossRound(t, bin, seed)
			archived += a
			tornCopies += copies
			if torn {
				tornRounds++
			}
			if done {
				finished++
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	if tornRounds == rounds {
		t.Fatalf("every one of %d rounds was torn", rounds)
	}
	summary(t, "rounds=%d torn_rounds=%d torn_copies=%d finished_before_the_cut=%d archives_found_on_the_copies=%d; checked: every record once, verify clean, the next run exit 0",
		rounds, tornRounds, tornCopies, finished, archived)
}

func compressPowerLossRound(t *testing.T, bin string, seed uint64) (archives int, torn bool, tornCopies int, finished bool) {
	rng := rand.New(rand.NewPCG(seed, 2))
	work := t.TempDir()
	img := filepath.Join(work, "disk.img")
	mkfsExt4(t, img, 256<<20, 4096)
	m := mountImage(t, img, "commit=600,noinit_itable")
	dir := filepath.Join(m.dir, "log")
	written := writeSealedLog(t, dir, 120)
	d, err := os.Open(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Syncfs(int(d.Fd()))
	d.Close()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "compress-finished", dir, "-j", "1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = pdeathKill()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	snap := filepath.Join(work, "snapshot.img")
	torn, tornCopies = m.cutPower(t, cmd.Process.Pid, snap)
	cmd.Process.Kill()
	err = cmd.Wait()
	reaped = true
	finished = err == nil
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL) {
		t.Fatalf("compress-finished: %v\n%s", err, out.String())
	}
	m.release(t)
	if torn {
		return 0, true, tornCopies, finished
	}

	s := mountImage(t, snap, "noinit_itable")
	dir = filepath.Join(s.dir, "log")
	archives = checkArchivedLog(t, dir, written, "after the cut")
	cmd = exec.Command(bin, "compress-finished", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compress-finished after the cut: %v\n%s", err, b)
	}
	checkArchivedLog(t, dir, written, "after the next run")
	s.release(t)
	t.Logf("cut with %d archives on the copy (finished before the cut: %v), %d torn copies", archives, finished, tornCopies)
	return archives, false, tornCopies, finished
}

// writeSealedLog writes a log of n full 64 KiB segments (and the empty
// one Close leaves) and returns its records by position.
func writeSealedLog(t *testing.T, dir string, n int) map[segment.Position]RecordID {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment, Sync: writer.SyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	written := map[segment.Position]RecordID{}
	var buf []byte
	for i := uint64(0); ; i++ {
		id := RecordID{Run: 1, I: i}
		buf = AppendRecord(buf[:0], id)
		p, err := w.Append(buf)
		if err != nil {
			t.Fatal(err)
		}
		written[p] = id
		if p.Seq > uint64(n) {
			break // the first record of segment n+1: n are full
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return written
}

// checkArchivedLog checks that dir holds exactly the records written, intact, each segment as its
// original or its archive, and that verify finds nothing. It returns how
// many archives there are.
func checkArchivedLog(t *testing.T, dir string, written map[segment.Position]RecordID, when string) int {
	t.Helper()
	got, damage := readRecords(t, dir)
	for _, d := range damage {
		t.Errorf("%s: reader: %v", when, &d)
	}
	for p, id := range written {
		if got[p] != id {
			t.Errorf("%s: %v at %v missing (read %v)", when, id, p, got[p])
		}
	}
	if len(got) != len(written) {
		t.Errorf("%s: %d records read, %d written", when, len(got), len(written))
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Class != verify.Unexpected {
			t.Errorf("%s: verify: %+v", when, f)
		}
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range l.Segments {
		if e.Archived {
			n++
		}
	}
	return n
}
