package reader_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A running writer keeps files created ahead after its next segment, and
// removes them at Close; the next writer continues in the segment before
// them and makes those numbers again, as new files. A follower placed in
// one of them (At a position there, or waiting At a number past the end
// that the writer then created ahead) kept the removed file's mapping:
// it waited there, then reported it unfinished (or torn, once a later
// segment was sealed) and passed over every record the next writer
// appended to the file now at that name. It must read that file instead.
//
// A writer killed removes nothing (recovery seals the empty files it
// left, and continues in the newest): a follower in one of them reads it
// to the END recovery writes, and goes on. The case where the writer that
// made the file again is killed, and a third recovers the log, is the
// first one's loss again.
func TestFollowerInAnEmptySegmentTheNextWriterMakesAgain(t *testing.T) {
	for _, c := range []struct {
		name string
		// killFirst: the writer that made segment 3 ahead is a child,
		// killed instead of closed. killSecond: the next writer is a
		// child killed once it wrote in segment 5, and a third
		// recovers the log.
		killFirst, killSecond bool
	}{
		{name: "Close, Open"},
		{name: "Close, Open, killed, recovered", killSecond: true},
		{name: "killed, recovered", killFirst: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := writer.Options{SegmentSize: segSize, Sync: writer.SyncNone}
			seg3 := filepath.Join(dir, segment.FileName(3))
			var stop func()
			if c.killFirst {
				ch, _ := startWriterChild(t, dir, 0)
				stop = ch.kill
			} else {
				w, err := writer.Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				if pos, err := w.Append([]byte("first writer")); err != nil || pos.Seq != 1 {
					t.Fatalf("first record at %v: %v", pos, err)
				}
				stop = func() {
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Segment 2 is the prepared next one, 3 the first created
			// ahead of it.
			waitFile(t, seg3)
			r, dmg := openInThree(t, dir)
			if !mapsFile(t, seg3, false) {
				t.Fatal("the follower does not map segment 3")
			}
			stop()
			if c.killFirst {
				if _, err := os.Lstat(seg3); err != nil {
					t.Fatalf("a killed writer's file made ahead: %v", err)
				}
			} else if !mapsFile(t, seg3, true) {
				t.Fatal("Close did not remove segment 3 under the follower")
			}

			followed := followTo(t, r)
			var acked []segment.Position
			if c.killSecond {
				var ch *writerChild
				ch, acked = startWriterChild(t, dir, 5)
				ch.kill()
			}
			w, err := writer.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, pos := 0, (segment.Position{}); pos.Seq < 7; i++ {
				if pos, err = w.Append(fmt.Appendf(nil, "last writer %d %s", i, strings.Repeat("x", 1000))); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, pos)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			// What the log holds from 3:64 on, read back in one pass.
			all, replayDmg := readAll(t, dir, reader.Options{Start: reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize})})
			if len(replayDmg) != 0 {
				t.Fatalf("replay: %v", replayDmg)
			}
			held := map[segment.Position]bool{}
			for _, x := range all {
				held[x.pos] = true
			}
			for _, p := range acked {
				if p.Seq >= 3 && !held[p] {
					t.Fatalf("acknowledged record at %v not in the log", p)
				}
			}
			got := followed(all[len(all)-1].pos)
			sameRecs(t, got, all)
			if len(*dmg) != 0 {
				t.Fatalf("the follower reported %d damage: %v", len(*dmg), *dmg)
			}
		})
	}
}

// openInThree opens a follower At 3:64 and has it open segment 3, which
// holds no record; it returns the follower and what it reports.
func openInThree(t *testing.T, dir string) (*reader.Reader, *[]reader.Damage) {
	t.Helper()
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{
		Start:  reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize}),
		Follow: true, PollMax: 10 * time.Millisecond,
		OnDamage: func(d reader.Damage) { dmg = append(dmg, d) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() }) // after followTo's goroutine ended
	if r.Next() {
		t.Fatalf("record at %v in an empty segment", r.Record().Position)
	}
	return r, &dmg
}

// followTo follows r on another goroutine, from now on, while the
// writers append: the returned function, given the last record in the
// log, waits for r to return it and returns r's records, failing if r
// stops or returns none for 10 seconds.
func followTo(t *testing.T, r *reader.Reader) func(last segment.Position) []rec {
	lastc := make(chan segment.Position, 1)
	type result struct {
		got []rec
		err error
	}
	done, stop, exited := make(chan result, 1), make(chan struct{}), make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		<-exited
	})
	go func() {
		defer close(exited)
		var got []rec
		last, known, quiet := segment.Position{}, false, time.Now()
		for {
			for r.Next() {
				x := r.Record()
				p, err := x.Clone()
				if err != nil {
					done <- result{got, err}
					return
				}
				got, quiet = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: p.Payload}), time.Now()
			}
			if err := r.Err(); err != nil {
				done <- result{got, err}
				return
			}
			select {
			case last, known = <-lastc:
			case <-stop:
				return // the test failed before it asked
			default:
			}
			switch {
			case known && len(got) > 0 && got[len(got)-1].pos.Compare(last) >= 0:
				done <- result{got, nil}
				return
			case known && time.Since(quiet) > 10*time.Second:
				done <- result{got, fmt.Errorf("no record for 10s, want up to %v", last)}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := r.Wait(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				done <- result{got, err}
				return
			}
		}
	}()
	return func(last segment.Position) []rec {
		t.Helper()
		lastc <- last
		res := <-done
		if res.err != nil {
			first, end := segment.Position{}, segment.Position{}
			if len(res.got) > 0 {
				first, end = res.got[0].pos, res.got[len(res.got)-1].pos
			}
			t.Fatalf("after %d records (%v to %v): %v", len(res.got), first, end, res.err)
		}
		return res.got
	}
}

// waitFile waits for path to exist.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Lstat(path)
		if err == nil {
			return
		}
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", path, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// mapsFile reports whether this process maps path: as a removed file
// (the kernel's " (deleted)" after the name), or as the file at path.
func mapsFile(t *testing.T, path string, deleted bool) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		name, gone := strings.CutSuffix(line, " (deleted)")
		if strings.HasSuffix(name, " "+path) && gone == deleted {
			return true
		}
	}
	return false
}

// A writer in a child process (this test binary run again for
// TestWriterChild), to be killed: it prints "POS seq off" for each record
// Append acknowledged, then "HOLD" and waits, holding the lock. It appends
// one small record, or with a segment number N (AUDITSEG_READER_CHILD_TO)
// records of about 1 KiB until one lands in segment N, and then waits for
// the segment before N to be sealed: killed while it holds, it leaves no
// claim or footer half-made, which a follower would rightly report.
const (
	writerChildDir = "AUDITSEG_READER_CHILD_DIR"
	writerChildTo  = "AUDITSEG_READER_CHILD_TO"
)

func TestWriterChild(t *testing.T) {
	dir := os.Getenv(writerChildDir)
	if dir == "" {
		t.Skip("helper process of TestFollowerInAnEmptySegmentTheNextWriterMakesAgain")
	}
	to, _ := strconv.ParseUint(os.Getenv(writerChildTo), 10, 64)
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	p := []byte("child writer")
	for i := 0; ; i++ {
		if to > 0 {
			p = fmt.Appendf(nil, "child writer %d %s", i, strings.Repeat("x", 1000))
		}
		pos, err := w.Append(p)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Printf("POS %d %d\n", pos.Seq, pos.Offset)
		if pos.Seq >= to {
			break
		}
	}
	for to > 1 {
		if _, err := segment.SealedFooter(filepath.Join(dir, segment.FileName(to-1))); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("HOLD")
	select {}
}

type writerChild struct {
	cmd *exec.Cmd
	out *bufio.Scanner
}

// startWriterChild starts a writer child on dir (to: see TestWriterChild)
// and returns the positions it acknowledged, once it holds.
func startWriterChild(t *testing.T, dir string, to uint64) (*writerChild, []segment.Position) {
	t.Helper()
	c := &writerChild{cmd: exec.Command(os.Args[0], "-test.run=^TestWriterChild$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), writerChildDir+"="+dir, writerChildTo+"="+strconv.FormatUint(to, 10))
	c.cmd.Stderr = os.Stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewScanner(out)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kill)
	var acked []segment.Position
	for c.out.Scan() {
		line := c.out.Text()
		var p segment.Position
		switch _, err := fmt.Sscanf(line, "POS %d %d", &p.Seq, &p.Offset); {
		case err == nil:
			acked = append(acked, p)
		case line == "HOLD":
			return c, acked
		case strings.HasPrefix(line, "ERROR"):
			t.Fatalf("writer child: %s", line)
		}
	}
	t.Fatalf("writer child ended after %d records: %v", len(acked), c.out.Err())
	return nil, nil
}

// kill SIGKILLs the child and waits for it.
func (c *writerChild) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}
