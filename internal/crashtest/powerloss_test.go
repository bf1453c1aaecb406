package crashtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestPowerLossExt4 cuts the power of a real writer on a real ext4 file
// system, by snapshotting the block device under it. Unlike TestPowerCut,
// which builds images from the flushes FaultFS records, nothing here is
// modelled by the test: what survives is what the kernel's ext4 sent to
// the device, directory entries and the journal included.
//
// Each round makes a sparse 256 MiB file in t.TempDir(), mkfs.ext4 on it,
// attaches it to a loop device and mounts it with commit=600, so that the
// journal commits only when something waits for it: a short round sends
// the device nothing but what the writer's msync, fsync, fdatasync,
// sync_file_range and directory fsyncs send (the kernel's periodic
// writeback takes only data dirty for longer than
// vm.dirty_expire_centisecs, or above the background threshold: both are
// read and the test skips if a round could reach them). The crash child
// (crashchild, 8 goroutines, 64 KiB segments: a round crosses many
// rotations, seals and directory fsyncs) writes a log there and reports
// every acknowledged record on a pipe. At a random instant the test
// SIGSTOPs it and waits until every thread is stopped (a system call in
// progress, such as an fsync, completes first), waits for the loop device
// to be idle (/sys/block/loopN/inflight "0 0"), notes its stat, copies the
// backing file, and reads the stat again: the copy is the disk as a power
// cut at that instant leaves it (every write the device completed, nothing
// of the page cache) unless the device did I/O meanwhile, when the copy
// may be torn and is taken again (five times at most, the child still
// stopped, each a later instant of the same cut; then the round is
// dropped as torn, and every round torn fails the test). The child is
// then killed and the file system unmounted.
//
// The copy is attached to a loop device and mounted (ext4 replays its
// journal), and checked:
//
//   - before recovery, verify exits 0 or 3 (crash residue only);
//   - writer.Open recovers it, and every record read back before recovery
//     is read back after it, at the same position, byte-exact (nothing
//     committed rewritten), and nothing else;
//   - every record read back is one the child appended (its own checksum,
//     numbering and position: for an acknowledged record, the position
//     Append returned), at most one past each goroutine's acknowledgements
//     (appended, stopped before its report), never twice;
//   - after recovery verify finds nothing (exit 0), and the reader no
//     damage;
//   - SyncAlways: every acknowledged record is there; SyncInterval: every
//     record whose acknowledgement arrived more than the interval plus
//     powerLossSlack before the SIGSTOP; SyncNone: nothing more (the
//     README promises nothing without Sync).
//
// Limits: the loop device completes a write into its backing file's page
// cache, so the snapshot models a device without a volatile write cache,
// or one that honours flushes in order; which writes a device with a cache
// would lose, and their order inside the device, are not explored.
func TestPowerLossExt4(t *testing.T) {
	requireLoop(t)
	bin := buildBinary(t, "internal/crashtest/crashchild")
	rounds := max(iterations(9)/3, 1)
	rng := rand.New(rand.NewPCG(seedFor(t), 7))
	var figs []string
	for _, mode := range []writer.SyncMode{writer.SyncAlways, writer.SyncInterval, writer.SyncNone} {
		var sum powerLossResult
		for r := range rounds {
			if d, ok := t.Deadline(); ok && time.Until(d) < 30*time.Second {
				// A timeout exits without t.Cleanup: stop while the
				// mounts can still be released.
				t.Fatalf("out of time before %v round %d", mode, r)
			}
			seed := rng.Uint64()
			var res powerLossResult
			ok := t.Run(fmt.Sprintf("%v/%d", mode, r), func(t *testing.T) {
				res = powerLossRound(t, bin, mode, seed)
			})
			if !ok {
				t.FailNow()
			}
			sum.add(res)
		}
		if sum.rounds > 0 && sum.rounds == sum.tornRounds { // 0: -run selected other modes
			t.Fatalf("%v: every one of %d rounds was torn (the device kept doing I/O while the writer was stopped)", mode, sum.rounds)
		}
		figs = append(figs, fmt.Sprintf("%v: rounds=%d torn_rounds=%d torn_copies=%d acknowledged=%d promised_checked=%d read_back=%d oldest_lost_ack=%v torn_tails_finished=%d",
			mode, sum.rounds, sum.tornRounds, sum.tornCopies, sum.acked, sum.promised, sum.readBack, sum.oldestLost.Round(time.Millisecond), sum.tornTails))
	}
	summary(t, "%v", figs)
}

// powerLossSlack is how long after its acknowledgement reached the test
// an `interval` record must be durable, beyond the interval: one flush
// (a journal commit through the loop device, which fsyncs the backing
// file) and the child's scheduling, under a loaded CI machine.
const (
	powerLossInterval = 20 * time.Millisecond
	powerLossSlack    = 750 * time.Millisecond
)

type powerLossResult struct {
	rounds, tornRounds, tornCopies int
	acked, promised, readBack      int
	oldestLost                     time.Duration
	tornTails                      int
}

func (s *powerLossResult) add(r powerLossResult) {
	s.rounds += r.rounds
	s.tornRounds += r.tornRounds
	s.tornCopies += r.tornCopies
	s.acked += r.acked
	s.promised += r.promised
	s.readBack += r.readBack
	s.oldestLost = max(s.oldestLost, r.oldestLost)
	s.tornTails += r.tornTails
}

// ack is one acknowledgement of the child and when it reached the test.
type ack struct {
	pos segment.Position
	at  time.Time
}

const powerLossGoroutines = 8

func powerLossRound(t *testing.T, bin string, mode writer.SyncMode, seed uint64) powerLossResult {
	res := powerLossResult{rounds: 1}
	rng := rand.New(rand.NewPCG(seed, 1))
	work := t.TempDir()
	img := filepath.Join(work, "disk.img")
	// 4 KiB blocks, as on most disks, in half the rounds; 1 KiB blocks
	// (mkfs's default for a file system this small) in the others: a
	// page is then four blocks, written back as four units.
	block := 4096
	if rng.IntN(2) == 0 {
		block = 1024
	}
	mkfsExt4(t, img, 256<<20, block)
	m := mountImage(t, img, "commit=600,noinit_itable")
	logDir := filepath.Join(m.dir, "log")

	c := startChild(t, bin, nil, "-dir", logDir, "-sync", mode.String(),
		"-goroutines", strconv.Itoa(powerLossGoroutines),
		"-segment-size", strconv.Itoa(testSegment), "-sync-interval", powerLossInterval.String(),
		"-seed", strconv.FormatUint(seed, 10))
	var reaped bool
	t.Cleanup(func() {
		if !reaped {
			c.kill()
			c.cmd.Wait()
		}
	})
	var mu sync.Mutex
	acks := make([][]ack, powerLossGoroutines)
	ready := make(chan struct{})
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for msg := range c.msgs {
			switch msg.Kind {
			case MsgReady:
				close(ready)
			case MsgAck:
				mu.Lock()
				if msg.G < powerLossGoroutines && uint64(len(acks[msg.G])) == msg.I {
					acks[msg.G] = append(acks[msg.G], ack{msg.Pos, time.Now()})
				} else {
					t.Errorf("acknowledgement out of order: goroutine %d record %d", msg.G, msg.I)
				}
				mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not open the log in 30 s\n%s", c.stderr.String())
	}
	// An interval round runs longer: only records older than the
	// interval and the slack are checked.
	delay := time.Duration(300+rng.IntN(1200)) * time.Millisecond
	if mode == writer.SyncInterval {
		delay += powerLossSlack
	}
	time.Sleep(delay)

	cut := time.Now()
	snap := filepath.Join(work, "snapshot.img")
	torn, tornCopies := m.cutPower(t, c.cmd.Process.Pid, snap)
	res.tornCopies = tornCopies
	c.kill()
	if !c.wait(t) {
		t.Fatalf("the child exited by itself\n%s", c.stderr.String())
	}
	reaped = true
	<-consumed
	m.release(t)
	if torn {
		res.tornRounds++
		t.Logf("torn: the device did I/O during every copy")
		return res
	}

	promised := func(g int, a ack) bool {
		switch mode {
		case writer.SyncAlways:
			return true
		case writer.SyncInterval:
			return a.at.Before(cut.Add(-powerLossInterval - powerLossSlack))
		}
		return false
	}
	for g := range acks {
		for _, a := range acks[g] {
			res.acked++
			if promised(g, a) {
				res.promised++
			}
		}
	}
	s := mountImage(t, snap, "noinit_itable")
	var oldestLost time.Duration
	res.readBack, oldestLost, res.tornTails = checkPowerLoss(t, filepath.Join(s.dir, "log"), mode, acks, cut, promised)
	res.oldestLost = oldestLost
	s.release(t)
	t.Logf("%v, %d-byte blocks: cut %v after Open, %d acknowledged, %d promised, %d read back, %d torn copies, oldest lost acknowledged %v before the cut",
		mode, block, delay, res.acked, res.promised, res.readBack, res.tornCopies, oldestLost)
	return res
}

// readRecords returns every record the reader returns from dir, by
// position, and its damage reports; a payload that is not a crash-test
// record fails the test.
func readRecords(t *testing.T, dir string) (map[segment.Position]RecordID, []reader.Damage) {
	t.Helper()
	var damage []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { damage = append(damage, d) }})
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	defer r.Close()
	got := map[segment.Position]RecordID{}
	for r.Next() {
		rec := r.Record()
		id, err := ParseRecord(rec.Payload)
		if err != nil {
			t.Fatalf("%s: record at %v: %v", dir, rec.Position, err)
		}
		got[rec.Position] = id
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: reader: %v", dir, err)
	}
	return got, damage
}

// checkPowerLoss checks the log in dir as a power cut left it (see
// TestPowerLossExt4) and returns how many records it holds.
//
// It also returns how long before the cut the oldest acknowledgement of a
// lost record arrived (0 if none was lost), and how many torn tails
// recovery finished.
func checkPowerLoss(t *testing.T, dir string, mode writer.SyncMode, acks [][]ack, cut time.Time, promised func(int, ack) bool) (n int, oldestLost time.Duration, tornTails int) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the log directory is gone after the power cut: %v", err)
	}
	report := t.Errorf
	if mode == writer.SyncNone {
		report = t.Logf
	}
	// A frame committed but not yet flushed may reach the disk in part:
	// a flush of the frame before it writes the page holding its header,
	// not the next (seen under SyncAlways: an Append still waiting for
	// its msync). Nothing intact after it, it is a torn tail: crash
	// residue (unfinished) that recovery puts under a PAD (FORMAT.md
	// section 8, step 3.5). Anything but residue is a finding.
	unexplained := func(rep *verify.Report) []verify.Finding {
		var bad []verify.Finding
		for _, f := range rep.Findings {
			if !(f.Class == verify.Unfinished && f.Residue) && f.Class != verify.Unexpected {
				bad = append(bad, f)
			}
		}
		return bad
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if bad := unexplained(rep); len(bad) > 0 || rep.ExitCode(false) == verify.ExitError {
		report("verify before recovery: exit %d, findings %+v", rep.ExitCode(false), bad)
	}
	before, damage := readRecords(t, dir)
	for _, d := range damage {
		t.Logf("before recovery: %v", &d)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	st := w.Recovered()
	if err := w.Close(); err != nil {
		t.Fatalf("close after recovery: %v", err)
	}
	// Under SyncNone the kernel writes pages back in any order, so a
	// committed frame may reach the disk without the rest of its bytes
	// with intact frames after it: recovery leaves such a segment
	// unsealed, the reader and verify report it (FORMAT.md section 8,
	// step 3.2). Nothing was promised there (report is t.Logf).
	if st.DamagedSegments > 0 {
		report("recovery left %d damaged segments (%+v)", st.DamagedSegments, st)
	}
	after, damage := readRecords(t, dir)
	for _, d := range damage {
		report("reader after recovery: %v", &d)
	}
	for p, id := range before {
		if got, ok := after[p]; !ok || got != id {
			t.Errorf("%v at %v before recovery, %v (present %v) after it", id, p, got, ok)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d records after recovery, %d before", len(after), len(before))
	}
	seen := map[RecordID]bool{}
	for p, id := range after {
		switch {
		case id.Run != 1 || id.G >= powerLossGoroutines:
			t.Errorf("%v at %v: no such goroutine", id, p)
		case seen[id]:
			t.Errorf("%v read back twice", id)
		case id.I > uint64(len(acks[id.G])):
			t.Errorf("%v at %v: the goroutine had %d acknowledged, so it never appended this one", id, p, len(acks[id.G]))
		case id.I < uint64(len(acks[id.G])) && acks[id.G][id.I].pos != p:
			t.Errorf("%v read back at %v, acknowledged at %v", id, p, acks[id.G][id.I].pos)
		}
		seen[id] = true
	}
	lost := 0
	for g := range acks {
		for i, a := range acks[g] {
			if !seen[RecordID{Run: 1, G: uint32(g), I: uint64(i)}] {
				oldestLost = max(oldestLost, cut.Sub(a.at))
			}
			if promised(g, a) && !seen[RecordID{Run: 1, G: uint32(g), I: uint64(i)}] {
				if lost == 0 {
					t.Errorf("%v: goroutine %d record %d acknowledged at %v, durable by the README, lost", mode, g, i, a.pos)
				}
				lost++
			}
		}
	}
	if lost > 0 {
		t.Errorf("%v: %d promised records lost", mode, lost)
	}
	rep, err = verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(false) != verify.ExitClean {
		report("verify after recovery: exit %d, findings %+v", rep.ExitCode(false), rep.Findings)
	}
	if st.TornTails > 0 {
		t.Logf("%v: recovery finished %d torn tails", mode, st.TornTails)
	}
	return len(after), oldestLost, st.TornTails
}
