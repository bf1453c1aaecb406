package reader_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A follower that keeps up with a writer read the whole directory at
// every rotation (the next segment appeared; the look for a later sealed
// segment at the first reserved frame of each): in a log of 15,000
// segments, 9 ms of CPU a rotation, 78% of tail -f's CPU, growing with
// the number of segments kept. Between the listings it takes once a
// second it finds the next segments by their names. The count is of the
// opens of the directory (every listing opens it), against the follow's
// duration: bounded by it, not by the rotations or the catch-ups in it.
func TestFollowerListsOncePerSecondNotPerRotation(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	defer l.close()
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opens := testfs.CountOpens(t, dir)
	start := time.Now()
	const rotations = 40
	p := bytes.Repeat([]byte("x"), 1000)
	written, read, listings := 0, 0, 0
	var held segment.Position // a frame left reserved at each catch-up, as a writer's appender holds one
	for catchUp := 0; l.seq <= rotations; catchUp++ {
		if held.Seq != 0 {
			l.commitReserved(held, p, time.Now().UnixNano())
			written, held = written+1, segment.Position{}
		}
		// About four catch-ups a segment (64 records fill one).
		for range 15 {
			l.append(p)
			written++
		}
		// Every other catch-up ends at a reserved frame, the others at
		// zeros.
		if catchUp%2 == 1 && l.off+segment.FrameSize(len(p)) <= segment.DataLimit(l.size) {
			held = l.reserve(len(p))
		}
		for {
			if r.Next() {
				read++
				continue
			}
			if read == written {
				break
			}
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("after %d of %d records: %v", read, written, err)
			}
		}
		// Taken at each catch-up: inotify merges an event with an equal
		// one still queued before it, so listings with no other open
		// between them would count as one.
		listings += opens.Take(t)[""]
	}
	elapsed := time.Since(start)
	t.Logf("%d listings in %v, %d rotations, %d records", listings, elapsed, rotations, read)
	if limit := 1 + int(elapsed/time.Second); listings > limit {
		t.Errorf("the follower listed the directory %d times in %v (%d rotations): want one a second at most (%d)", listings, elapsed, rotations, limit)
	}
}
