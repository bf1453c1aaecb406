package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestNotPassedWhenAWriterCameBack: a follower passes the segment it
// waits in, its writer gone, when a later segment holds frames (or bytes)
// while this one ends in zeros. It looked at the later segments after the
// walk that found the zeros and the check that no writer held the lock: a
// writer that started in between, continued in this segment (the empty
// one a closing writer leaves), filled it and went on into the next made
// the follower pass every record it wrote here (1,833 in this test). The
// test puts a follower there with the real writer and runs the decision
// (atTail) as it runs after that check, with the reader's view from
// before the writer came back; once with the writer still running, once
// after it closed again (so checking the lock again would not tell).
func TestNotPassedWhenAWriterCameBack(t *testing.T) {
	for _, stillRunning := range []bool{true, false} {
		t.Run(fmt.Sprintf("running=%v", stillRunning), func(t *testing.T) {
			dir := closedWriterLog(t)
			r, err := Open(dir, Options{Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.Next() || string(r.Record().Payload) != "first" || r.Next() {
				t.Fatalf("not one record: %v", r.Err())
			}
			c := r.cur
			if c == nil || !c.parked || c.off != segment.HeaderSize || r.alive {
				t.Fatalf("the follower does not wait at the start of the empty segment: %+v, alive %v", c, r.alive)
			}

			w, want := appendPast(t, dir, c.seq)
			defer w.Close()
			if !stillRunning {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}

			// What the follower saw before the writer came back: no writer,
			// zeros from its offset on.
			r.alive, c.parked = false, false
			if !r.atTail(c) && r.err != nil {
				t.Fatal(r.err)
			}
			var got []string
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for len(got) < len(want) {
				for r.Next() {
					got = append(got, string(r.Record().Payload))
				}
				if len(got) > 0 && got[len(got)-1] == want[len(want)-1] {
					break
				}
				if err := r.Wait(ctx); err != nil {
					t.Fatalf("%v after %d of %d records", err, len(got), len(want))
				}
			}
			if len(got) != len(want) || got[0] != want[0] {
				t.Fatalf("%d records, the first %q; want %d from %q (segment %d passed)", len(got), got[0], len(want), want[0], c.seq)
			}
		})
	}
}

// TestNotPassedWhenAWriterCameBackNoFollow: the same race for a replay
// without Follow (tail -n +1 --cursor-file F, run from cron). The walk of
// the empty segment a closing writer left found zeros and no writer; a
// writer starts before atTail lists the directory, continues in that
// segment, fills it and commits in the next. atTail passed the segment
// because a later one is listed (stillZero ran only under Follow), and
// the reader returned the next segment's records: every record in
// between was skipped, and a cursor stored after them made every later
// run skip them too.
func TestNotPassedWhenAWriterCameBackNoFollow(t *testing.T) {
	dir := closedWriterLog(t)
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || string(r.Record().Payload) != "first" || r.Next() {
		t.Fatalf("not one record: %v", r.Err())
	}
	c := r.cur
	if c == nil || c.seq != 2 || c.off != segment.HeaderSize || r.alive || !r.done {
		t.Fatalf("the reader did not end at the start of the empty segment: %+v, alive %v", c, r.alive)
	}
	w, want := appendPast(t, dir, c.seq)
	defer w.Close()
	// What the reader saw just before: no writer, zeros from its offset on.
	r.done, r.alive = false, false
	if !r.atTail(c) && r.err != nil {
		t.Fatal(r.err)
	}
	var got []string
	for r.Next() {
		got = append(got, string(r.Record().Payload))
	}
	if len(got) > 0 && got[0] != want[0] {
		t.Fatalf("returned %d records, the first %q: the %d before it, in segment %d, were passed", len(got), got[0], len(want)-len(got), c.seq)
	}
	// Read as a replay reads a live log: every committed record, then no
	// more for now (Next never waits without Follow).
	if len(got) != len(want) || r.Err() != nil {
		t.Fatalf("returned %d of %d records, then %v", len(got), len(want), r.Err())
	}
}

// closedWriterLog returns a log directory as a writer that closed leaves
// it: segment 1 sealed, holding one record "first", and the empty segment
// 2 after it, which the next writer continues in.
func closedWriterLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now().UnixNano()
	img := segment.NewImage(1, segment.MinSegmentSize, now)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, now, []byte("first"))
	segment.PutEnd(img, 1, off, now)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
		t.Fatal(err)
	}
	for seq, b := range map[uint64][]byte{1: img, 2: segment.NewImage(2, segment.MinSegmentSize, now)} {
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// appendPast opens a writer on dir, which continues in segment seq, and
// appends numbered records until one lands after it: seq is then full.
// It returns the writer, still open, and the records' payloads.
func appendPast(t *testing.T, dir string, seq uint64) (*writer.Writer, []string) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for {
		p := fmt.Sprintf("back %d", len(want))
		pos, err := w.Append([]byte(p))
		if err != nil {
			w.Close()
			t.Fatal(err)
		}
		want = append(want, p)
		if pos.Seq > seq {
			return w, want
		}
	}
}
