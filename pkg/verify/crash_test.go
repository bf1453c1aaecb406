package verify

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"go.uber.org/goleak"
)

// crashChildEnv makes the test binary act as a writer process that the
// crash test kills: the directory to write to.
const crashChildEnv = "AUDITSEG_VERIFY_CRASH_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if dir := os.Getenv(appendChildEnv); dir != "" {
		appendChild(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

// crashChild writes a few segments, leaves one reservation open (a
// goroutine caught between claim and commit), reports "ready" and keeps
// appending from two goroutines until it is killed.
func crashChild(dir string) {
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for i := range 2000 {
		if _, err := w.Append(fmt.Appendf(nil, "record %d %s", i, strings.Repeat("z", i%50))); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	if _, err := w.Reserve(100); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				if _, err := w.Append(fmt.Appendf(nil, "g%d record %d", g, i)); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	wg.Wait()
	select {} // wait to be killed, holding the lock
}

// startChild runs the test binary as the child env names, writing to
// dir, and returns it once it has said "ready". It is killed, if it is
// still running, when the test ends.
func startChild(t *testing.T, env, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	return cmd
}

// kill SIGKILLs the child and waits for it.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// TestKilledWriter runs a writer in a child process and SIGKILLs it while
// it appends: verify passes the live log, exits 3 on the dead one (crash
// residue only, nothing committed missing), and 0 once writer.Open has
// recovered it.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := startChild(t, crashChildEnv, dir)

	rep := mustDir(t, dir, Options{})
	if !rep.Logs[0].WriterAlive || rep.ExitCode(true) != ExitClean {
		t.Fatalf("live log: writer alive %v, exit %d\n%s", rep.Logs[0].WriterAlive, rep.ExitCode(true), summary(rep))
	}

	time.Sleep(20 * time.Millisecond) // let the appenders run a little
	kill(t, cmd)

	rep = mustDir(t, dir, Options{})
	if rep.ExitCode(false) != ExitUnfinished || rep.ExitCode(true) != ExitFindings {
		t.Fatalf("killed writer: exit %d (strict %d), want 3 (1)\n%s", rep.ExitCode(false), rep.ExitCode(true), summary(rep))
	}
	reserved := false
	for _, f := range rep.Findings {
		if f.Class == Unexpected {
			continue // a segment creation the kill interrupted
		}
		if f.Class != Unfinished || !f.Residue {
			t.Fatalf("killed writer: not crash residue: %+v", f)
		}
		reserved = reserved || strings.Contains(f.Reason, "reserved")
	}
	if !reserved {
		t.Errorf("the open reservation is not reported:\n%s", summary(rep))
	}
	records := rep.Totals.Records
	verifyWhileRecovered(t, dir, false)
	verifyWhileRecovered(t, dir, true)

	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Recovered(); st.RecoveredSegments == 0 || st.DamagedSegments != 0 {
		t.Errorf("recovery stats %+v", st)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, dir, Options{})
	if rep.ExitCode(true) != ExitClean || len(rep.Findings) != 0 {
		t.Fatalf("after recovery: exit %d\n%s", rep.ExitCode(true), summary(rep))
	}
	if rep.Totals.Records != records {
		t.Errorf("recovery changed the record count: %d, was %d", rep.Totals.Records, records)
	}
	recovered := 0
	for _, s := range rep.Segments {
		if s.State == StateRecovered {
			recovered++
		}
	}
	if recovered == 0 {
		t.Errorf("no segment marked recovered: %+v", rep.Segments)
	}
}

// verifyWhileRecovered verifies a copy of the crashed log at dir while a
// writer opens it once every segment has been read (from the progress
// callback), and with closed also closes it there: the residue verify read
// is the new writer's to repair, and verify, finding the writer alive
// afterwards or the LOCK file rewritten, reads again instead of reporting
// a dead writer (exit 3; seen in 8 of 20 runs of a review).
func verifyWhileRecovered(t *testing.T, dir string, closed bool) {
	t.Helper()
	cp := copyDir(t, dir)
	var w *writer.Writer
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	rep := mustDir(t, cp, Options{Workers: 1, Progress: func(done, total int64) {
		if done == total && w == nil {
			var err error
			if w, err = writer.Open(cp, writer.Options{SegmentSize: 64 << 10}); err != nil {
				t.Error(err)
			} else if closed {
				if err := w.Close(); err != nil {
					t.Error(err)
				}
			}
		}
	}})
	if w == nil {
		t.Fatal("the progress callback never reported the end")
	}
	if rep.Logs[0].WriterAlive == closed || rep.ExitCode(true) != ExitClean {
		t.Fatalf("a writer recovered the log while verify read it: writer alive %v, exit %d (strict)\n%s",
			rep.Logs[0].WriterAlive, rep.ExitCode(true), summary(rep))
	}
}

// TestForeignSegmentZero: no writer makes segment 0, so a file named with
// it is not part of the log. A writer continuing such a directory starts
// at 1 with a fresh chain, and verify finds the log clean, the file
// reported as unexpected. (Segment 0 was read as the first segment: the
// writer chained 1 to it, and verify then failed 1 for good, taking it for
// the first of its log with a non-zero previous digest.)
func TestForeignSegmentZero(t *testing.T) {
	dir := t.TempDir()
	img := segment.NewImage(0, testSize, baseCreated)
	off := segment.PutFrame(img, 0, segment.HeaderSize, segment.TypeData, baseCreated+1, []byte("foreign"))
	segment.PutEnd(img, 0, off, baseCreated+2)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+3); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, segment.FileName(0))
	if err := os.WriteFile(zero, img, 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := w.Append([]byte("ours"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if pos.Seq != 1 {
		t.Errorf("first record at %v, want segment 1", pos)
	}
	rep := mustDir(t, dir, Options{})
	if rep.ExitCode(false) != ExitClean || !has(rep, Unexpected, 0, 0) {
		t.Fatalf("exit %d, findings %+v", rep.ExitCode(false), rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Class == Unexpected && f.Path != zero {
			t.Errorf("unexpected %s", f.Path)
		}
	}
}

// TestSealCutByCrash: a writer under `none` killed while it stored a
// footer leaves every byte of it but the magic (stored last). verify
// calls that crash residue of a seal that did not finish (exit 3), and
// writer.Open completes the seal (exit 0, the segment recovered).
func TestSealCutByCrash(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	l.storeFooterButMagic(l.open(4, true))
	l.open(0, false)

	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitUnfinished || len(rep.Findings) != 1 ||
		!strings.Contains(rep.Findings[0].Reason, "footer stored without its magic") {
		t.Fatalf("exit %d, findings:\n%s", rep.ExitCode(false), summary(rep))
	}
	w, err := writer.Open(l.dir, writer.Options{SegmentSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, l.dir, Options{})
	if rep.ExitCode(true) != ExitClean || rep.Segments[1].State != StateRecovered || rep.Segments[1].Records != 4 {
		t.Fatalf("after recovery: exit %d, segment %+v\n%s", rep.ExitCode(true), rep.Segments[1], summary(rep))
	}
}

// TestSealCutWithoutEnd: a footer stored without its magic, in a segment
// whose END frame is gone. No kill leaves that: the sealer stores a
// footer only after END is committed, and a killed process's stores stay
// in the page cache. END was there and was lost (damage, or a power loss
// under `none`), with whatever it closed, so this is a fatal missing-end,
// not crash residue (exit 3 says nothing committed is missing).
func TestSealCutWithoutEnd(t *testing.T) {
	for _, later := range []bool{false, true} {
		l := newTestLog(t)
		l.sealed(3)
		s := l.open(4, true)
		l.storeFooterButMagic(s)
		clear(s.img[s.end : s.end+segment.FrameHeaderSize])
		s.write(t)
		if later {
			l.sealed(2) // then it is not at the tail
		} else {
			l.open(0, false)
		}
		rep := mustDir(t, l.dir, Options{})
		if rep.ExitCode(false) != ExitFindings || !has(rep, MissingEnd, 2, s.end) {
			t.Fatalf("later sealed %v: exit %d, findings:\n%s", later, rep.ExitCode(false), summary(rep))
		}
		for _, f := range rep.Findings {
			if f.Residue || !strings.Contains(f.Reason, "without its magic") {
				t.Errorf("later sealed %v: %+v", later, f)
			}
		}
	}
}
