package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// removeOnFirstWrite is tail's stdout: on the first write it removes the
// segment files seqs of dir, as a retention job would, then keeps what is
// written.
type removeOnFirstWrite struct {
	t    *testing.T
	dir  string
	seqs []uint64
	done bool
	out  bytes.Buffer
}

func (w *removeOnFirstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		for _, s := range w.seqs {
			if err := os.Remove(filepath.Join(w.dir, segment.FileName(s))); err != nil {
				w.t.Error(err)
			}
		}
	}
	return w.out.Write(p)
}

// TestTailSegmentsRemovedWhileRead: `tail -n +1` of a log whose oldest
// segments a retention job removes while tail runs names the removed
// segments in a one-line warning, prints every other record, stores the
// cursor and exits 0. It exited 2 ("cannot open segment", an I/O error)
// and left the cursor file as it was. The segments are removed during
// tail's first write to stdout, before tail opens them: the replay opens
// sealed segments ahead on GOMAXPROCS goroutines, but its queues hold two
// ranges per goroutine (a 64 KiB segment is one range), so it has opened
// at most 2*GOMAXPROCS+2 of them by then. Retention removes every segment
// from 1 (being written) on: which of those before first were opened
// ahead, and are printed, is a matter of scheduling.
func TestTailSegmentsRemovedWhileRead(t *testing.T) {
	dir := t.TempDir()
	first := uint64(4*runtime.GOMAXPROCS(0) + 4)
	n := int(first+4) * 1700 // rec-N frames are 40 bytes: 1,600 a segment
	pos := timedLog(t, dir, n, time.Unix(1_700_000_000, 0))
	if pos[n-1].Seq < first+3 {
		t.Fatalf("only %d segments", pos[n-1].Seq)
	}
	var seqs []uint64
	for s := uint64(1); s <= first+1; s++ {
		seqs = append(seqs, s)
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	out := &removeOnFirstWrite{t: t, dir: dir, seqs: seqs}
	stderr, code := executeTo(t, out, nil, "tail", "-n", "+1", "--cursor-file", cur, dir)
	var low uint64 // the first segment removed before tail opened it
	prefix := fmt.Sprintf("auditseg tail: warning: %s: segments ", dir)
	suffix := fmt.Sprintf(" to %d removed", first+1)
	if n, _ := fmt.Sscanf(strings.TrimPrefix(stderr, prefix), "%d", &low); n != 1 || low < 2 || low > first ||
		!strings.HasPrefix(stderr, fmt.Sprintf("%s%d%s", prefix, low, suffix)) ||
		strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "records were not read") {
		t.Fatalf("exit %d; stderr %q, want one warning naming the removed segments, %q...%s...", code, stderr, prefix, suffix)
	}
	var want strings.Builder
	for i, p := range pos {
		if p.Seq < low || p.Seq > first+1 {
			fmt.Fprintf(&want, "rec-%d\n", i)
		}
	}
	if code != exitOK || out.out.String() != want.String() {
		t.Fatalf("exit %d, %d bytes of output (want %d); stderr %q", code, out.out.Len(), want.Len(), stderr)
	}
	c, ok, err := readCursor(context.Background(), cur)
	if err != nil || !ok || c.pos != pos[n-1] {
		t.Fatalf("cursor %v %v %v, want %v", c.pos, ok, err, pos[n-1])
	}
}

// TestTailSegmentRemovedFromTheMiddle: a segment removed while tail reads
// the log, while the one before it is still there, is not retention (it
// removes the oldest first) but a hole in the log: tail names it as
// damage and exits 1, as verify of the same directory reports a gap. tail
// said "removed" in a warning and exited 0. The segment is beyond what
// the replay opens ahead by its first write (see above), and the ones
// before it are never removed.
func TestTailSegmentRemovedFromTheMiddle(t *testing.T) {
	dir := t.TempDir()
	mid := uint64(4*runtime.GOMAXPROCS(0) + 4)
	n := int(mid+3) * 1700
	pos := timedLog(t, dir, n, time.Unix(1_700_000_000, 0))
	if pos[n-1].Seq < mid+2 {
		t.Fatalf("only %d segments", pos[n-1].Seq)
	}
	var want strings.Builder
	for i, p := range pos {
		if p.Seq != mid {
			fmt.Fprintf(&want, "rec-%d\n", i)
		}
	}
	out := &removeOnFirstWrite{t: t, dir: dir, seqs: []uint64{mid}}
	stderr, code := executeTo(t, out, nil, "tail", "-n", "+1", dir)
	if code != exitFailure || out.out.String() != want.String() {
		t.Fatalf("exit %d, %d bytes of output (want %d); stderr %q", code, out.out.Len(), want.Len(), stderr)
	}
	want1 := fmt.Sprintf("auditseg tail: %s: segment %d is missing\n", dir, mid)
	if !strings.HasPrefix(stderr, want1) || strings.Contains(stderr, "warning") {
		t.Fatalf("stderr %q, want it to start with %q", stderr, want1)
	}
	vout, _, code := execute(t, nil, "verify", dir)
	if code != exitFailure || !strings.Contains(vout, "gap") {
		t.Fatalf("verify: exit %d, want 1 with a gap:\n%s", code, vout)
	}
}

// TestTailFromInAHole: `tail --from` a position in a segment missing
// between two that are there (2, with 1 and 3 present) is a hole in the
// log: tail names it as damage and exits 1, as verify reports a gap, and
// prints every record from 3 on. tail began at 3 silently with exit 0,
// segment 2's records gone unmentioned (a replay from 1 reported them).
func TestTailFromInAHole(t *testing.T) {
	dir := t.TempDir()
	pos := timedLog(t, dir, 4*1700, time.Unix(1_700_000_000, 0))
	if pos[len(pos)-1].Seq < 3 {
		t.Fatalf("only %d segments", pos[len(pos)-1].Seq)
	}
	if err := os.Remove(filepath.Join(dir, segment.FileName(2))); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i, p := range pos {
		if p.Seq > 2 {
			fmt.Fprintf(&want, "rec-%d\n", i)
		}
	}
	out, stderr, code := execute(t, nil, "tail", "--from", fmt.Sprintf("2:%d", segment.HeaderSize), dir)
	want1 := fmt.Sprintf("auditseg tail: %s: segment 2 is missing\n", dir)
	if code != exitFailure || out != want.String() || !strings.HasPrefix(stderr, want1) {
		t.Fatalf("exit %d, %d bytes of output (want %d); stderr %q, want exit 1 and %q", code, len(out), want.Len(), stderr, want1)
	}
}
