package reader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A follower in a file made ahead that the writer removes unused at Close
// and the next writer makes again (TestFollowerInAnEmptySegmentTheNext-
// WriterMakesAgain) has found no frame: the look for a log begun again
// compared that file's creation time with the oldest segment's, and took
// an oldest segment "created after" it for a new log's. With the clock
// stepped back between the two creations (an NTP step, a VM resumed) the
// oldest one is, by the clock, created after: an ordinary Close stopped
// the follower with ErrLogReplaced, and the file made again did too,
// though the oldest segment is the very one the follower's first listing
// found. It must wait, then read the file made again. So too once
// retention removed that oldest segment while the follower waited: the
// oldest one now, segment 2, was there with segment 3 as well.
func TestFollowerInAnEmptySegmentNotStoppedByAClockStep(t *testing.T) {
	t.Run("oldest kept", func(t *testing.T) { followThroughClockStep(t, false) })
	t.Run("oldest removed", func(t *testing.T) { followThroughClockStep(t, true) })
}

func followThroughClockStep(t *testing.T, retained bool) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	defer l.close()
	for i := range 3 {
		l.append(payload(i))
	}
	l.rotate() // segment 1 sealed with frames; 2 the active one
	l.append(payload(3))
	// Segment 3 made ahead after the clock stepped back an hour.
	behind := time.Now().Add(-time.Hour).UnixNano()
	seg3 := filepath.Join(dir, segment.FileName(3))
	if err := os.WriteFile(seg3, segment.NewImage(3, segSize, behind), 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond,
		Start:    reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize}),
		OnDamage: func(d reader.Damage) { t.Errorf("damage: %v", d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitIdle(t, r)
	if retained {
		if err := os.Remove(filepath.Join(dir, segment.FileName(1))); err != nil {
			t.Fatal(err)
		}
		// The follower notes segment 2 as the oldest only at a listing
		// that finds segment 3 there too; removed before that one, 3
		// gone looks like a log begun again (restarted's documented
		// false verdict: the oldest noted removed since the last look,
		// with a clock stepped back).
		waitRelisted(t, r)
	}

	// The writer's Close removes segment 3, made ahead and never used.
	if err := os.Remove(seg3); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, r)

	// The next writer continues in 2 and makes 3 again, its clock still
	// behind segment 2's creation time, and writes a record in it.
	im := segment.NewImage(3, segSize, behind+int64(time.Second))
	segment.PutFrame(im, 3, segment.HeaderSize, segment.TypeData, time.Now().UnixNano(), []byte("in 3"))
	if err := os.WriteFile(seg3+".tmp", im, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(seg3+".tmp", seg3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait for the record in segment 3 made again: %v", err)
	}
	if !r.Next() || r.Record().Position != (segment.Position{Seq: 3, Offset: segment.HeaderSize}) || string(r.Record().Payload) != "in 3" {
		t.Fatalf("got %v %q, want the record at 3:64: %v", r.Record().Position, r.Record().Payload, r.Err())
	}
	if !r.SameLog() || errors.Is(r.Err(), reader.ErrLogReplaced) {
		t.Fatalf("SameLog %v, Err %v", r.SameLog(), r.Err())
	}
}
