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
			dir := t.TempDir()
			// What a writer that closed leaves: a sealed segment, and the
			// empty one after it that the next writer continues in.
			const size = segment.MinSegmentSize
			now := time.Now().UnixNano()
			img := segment.NewImage(1, size, now)
			off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, now, []byte("first"))
			segment.PutEnd(img, 1, off, now)
			if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
				t.Fatal(err)
			}
			for seq, b := range map[uint64][]byte{1: img, 2: segment.NewImage(2, size, now)} {
				if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), b, 0o640); err != nil {
					t.Fatal(err)
				}
			}
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

			w, err := writer.Open(dir, writer.Options{SegmentSize: size, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var want []string
			for {
				p := fmt.Sprintf("back %d", len(want))
				pos, err := w.Append([]byte(p))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, p)
				if pos.Seq > c.seq {
					break // c filled, and a frame in the next segment
				}
			}
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
