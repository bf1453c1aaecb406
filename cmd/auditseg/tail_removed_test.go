package main

import (
	"bytes"
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
// at most 2*GOMAXPROCS+2 of them by then.
func TestTailSegmentsRemovedWhileRead(t *testing.T) {
	dir := t.TempDir()
	first := uint64(4*runtime.GOMAXPROCS(0) + 4)
	n := int(first+4) * 1700 // rec-N frames are 40 bytes: 1,600 a segment
	pos := timedLog(t, dir, n, time.Unix(1_700_000_000, 0))
	if pos[n-1].Seq < first+3 {
		t.Fatalf("only %d segments", pos[n-1].Seq)
	}
	var want strings.Builder
	for i, p := range pos {
		if p.Seq != first && p.Seq != first+1 {
			fmt.Fprintf(&want, "rec-%d\n", i)
		}
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	out := &removeOnFirstWrite{t: t, dir: dir, seqs: []uint64{first, first + 1}}
	stderr, code := executeTo(t, out, nil, "tail", "-n", "+1", "--cursor-file", cur, dir)
	if code != exitOK || out.out.String() != want.String() {
		t.Fatalf("exit %d, %d bytes of output (want %d); stderr %q", code, out.out.Len(), want.Len(), stderr)
	}
	want1 := fmt.Sprintf("auditseg tail: warning: %s: segments %d to %d removed", dir, first, first+1)
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, want1) || !strings.Contains(stderr, "records were not read") {
		t.Fatalf("stderr %q, want one warning naming the removed segments, %q...", stderr, want1)
	}
	c, ok, err := readCursor(cur)
	if err != nil || !ok || c.pos != pos[n-1] {
		t.Fatalf("cursor %v %v %v, want %v", c.pos, ok, err, pos[n-1])
	}
}
