package reader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// An idle follower at the tail of a dead writer's segment, with the files
// the writer made ahead still there, lists the directory at every poll
// (a later file exists) and looks for a log begun again there: each look
// read the header of the segment it is at, twice a poll (the listing in
// unpark, then atTail's), and once more at each segment it moves to,
// right after the listing that found it. The segment is mapped, so its
// file cannot have changed without another inode: it must not be opened
// again while the follower waits, and the look must still see a log begun
// again (TestFollowStopsWhenLogBegunAgainInPlace).
func TestIdleFollowerDoesNotReopenItsSegment(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	for i := range 5 {
		l.append(payload(i))
	}
	for seq := uint64(2); seq <= 4; seq++ { // made ahead, never used
		p := filepath.Join(dir, segment.FileName(seq))
		if err := os.WriteFile(p, segment.NewImage(seq, segSize, time.Now().UnixNano()), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	l.die()
	defer l.close()

	r, err := reader.Open(dir, reader.Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		n++
	}
	if n != 5 || r.Err() != nil {
		t.Fatalf("%d records, err %v", n, r.Err())
	}
	opens := testfs.CountOpens(t, dir)
	const idle = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), idle)
	err = r.Wait(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait: %v", err)
	}
	got := opens.Take(t)
	total := 0
	for _, k := range got {
		total += k
	}
	t.Logf("opens in %v idle: %d, by file %v", idle, total, got)
	if got["LOCK"] == 0 || got[""] == 0 {
		t.Fatalf("the follower looked at neither the lock nor the directory (opens: %v): nothing counted", got)
	}
	if k := got[segment.FileName(1)]; k > 0 {
		t.Errorf("the segment the follower is at, mapped and unchanged, was opened %d times in %v", k, idle)
	}
}

// A reader moving through a log's segments opens each once, to map it
// (and once more in bulk, to copy payloads with read(2): Image.Reopen):
// the look for a log begun again, at the listing that found a segment and
// again when it is opened, reads the header of the segment the reader
// left, which it has just read and which has not changed since. A
// follower, a replay and a bulk replay alike.
func TestReaderOpensEachSegmentOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  reader.Options
		opens int
	}{
		{"follow", reader.Options{Follow: true, PollMax: time.Millisecond}, 1},
		{"replay", reader.Options{}, 1},
		{"bulk replay", reader.Options{Bulk: &reader.Bulk{Workers: 1, Append: lineOf,
			Write: func([]byte, reader.Position) error { return nil }}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			last := writeSegments(t, dir, "a", 6)
			opens := testfs.CountOpens(t, dir)
			r, err := reader.Open(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for r.Next() || tc.opts.Follow && r.Wait(ctx) == nil && r.Next() {
				if r.Record().Position == last {
					break
				}
			}
			if r.Err() != nil || tc.opts.Bulk == nil && r.Record().Position != last {
				t.Fatalf("reader stopped at %v, want %v: %v", r.Record().Position, last, r.Err())
			}
			got := opens.Take(t)
			t.Logf("opens: %v", got)
			// Segment 1 once more: the first listing notes its header,
			// before the segment is opened (see restart.go's noteOne).
			if k := got[segment.FileName(1)]; k > tc.opens+1 {
				t.Errorf("%s opened %d times, want %d at most", segment.FileName(1), k, tc.opens+1)
			}
			for seq := uint64(2); seq < last.Seq; seq++ {
				if k := got[segment.FileName(seq)]; k != tc.opens {
					t.Errorf("%s opened %d times, want %d", segment.FileName(seq), k, tc.opens)
				}
			}
		})
	}
}
