package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailFollowFromPastTheEndWarns: `tail -f --from POS` with no record
// at or after POS yet waited in silence, then printed only what the writer
// put at POS or later: the records it appended to POS's segment before
// POS were passed over without a word (without -f, the run says "no record
// at or after"). It warns now, before it waits, naming the position, the
// last record and what will not be printed; a follow from a record's own
// position does not.
func TestTailFollowFromPastTheEndWarns(t *testing.T) {
	bin := buildBinary(t)
	dir, w := liveLog(t)
	last, err := w.Append([]byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	past := segment.Position{Seq: last.Seq, Offset: last.Offset + 4096}
	// The warning is read from a pipe before any record is appended: the
	// check is made at start, on the log as it is then.
	cmd := exec.Command(bin, "tail", "-f", "--from", past.String(), dir)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	tp := &tailProc{cmd: cmd, lines: make(chan string, 1024)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			tp.lines <- sc.Text()
		}
		close(tp.lines)
	}()
	warned := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(errPipe).ReadString('\n')
		warned <- line
	}()
	select {
	case line := <-warned:
		for _, s := range []string{"warning: no record at or after " + past.String(), "the last record is at " + last.String(),
			fmt.Sprintf("records written to segment %d before offset %d will not be printed", past.Seq, past.Offset)} {
			if !strings.Contains(line, s) {
				t.Errorf("tail -f --from %s: stderr %q does not say %q", past, line, s)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tail -f --from %s: no warning after 30s", past)
	}
	at := startTail(t, bin, "-f", "--from", last.String(), dir)
	all := []string{"first"} // what the follow from a record prints
	var after []string       // what the follow from past prints: records at or after it
	for i := 0; len(after) < 3; i++ {
		rec := fmt.Sprintf("r%d", i)
		p, err := w.Append([]byte(rec))
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq != past.Seq {
			t.Fatalf("fixture: segment %d full before %s", past.Seq, past)
		}
		all = append(all, rec)
		if p.Offset >= past.Offset {
			after = append(after, rec)
		}
	}
	tp.expect(t, after)
	tp.stop(t, syscall.SIGTERM)
	at.expect(t, all)
	at.stop(t, syscall.SIGTERM)
	if s := at.stderr.String(); strings.Contains(s, "warning") {
		t.Errorf("tail -f --from %s (a record's position) warned: %q", last, s)
	}
}

// liveLog opens a writer on a new log of segments of the smallest size,
// closed when the test ends, and returns the log's directory and the
// writer.
func liveLog(t *testing.T) (string, *writer.Writer) {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return dir, w
}
