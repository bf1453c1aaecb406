package reader_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A writer that died with a damaged committed frame in its segment N
// leaves N to recovery, which leaves it unsealed for verify
// (writer.recoverMapped) and has the next writer append to N+1. A
// follower at N's tail saw a live writer and waited there for the frames
// it could not tell the writer would never commit, until a later segment
// was sealed: on a quiet log, hours of records in N+1 that tail -f did
// not show. The writer's LOCK file names the first segment it appends
// to; N is below it, so no live writer's frame can land in N any more.
func TestFollowPastSegmentRecoveryLeftDamaged(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	a := l.append([]byte("a"))
	b := l.append([]byte("bbbb"))
	c := l.append([]byte("c"))
	l.m[b.pos.Offset+segment.FrameHeaderSize] ^= 0xff // its CRC fails
	l.die()
	l.close()
	fw := follow(t, dir, reader.Options{PollMax: 10 * time.Millisecond})
	sameRecs(t, fw.waitFor(t, 2, 5*time.Second), []rec{a, c})
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if st := w.Recovered(); st.DamagedSegments != 1 {
		t.Fatalf("recovery stats %+v; want segment 1 left damaged", st)
	}
	p := []byte("d")
	pos, err := w.Append(p)
	if err != nil {
		t.Fatal(err)
	}
	if pos.Seq != 2 {
		t.Fatalf("appended at %v; want segment 2", pos)
	}
	// A replay stopped there as well, as at the tail of a live log.
	if got, _ := readAll(t, dir, reader.Options{}); len(got) != 3 || got[2].pos != pos {
		t.Fatalf("replay: %d records; want 3, the last at %v", len(got), pos)
	}
	start := time.Now()
	got := fw.waitFor(t, 3, 5*time.Second)
	t.Logf("segment 2's record after %v", time.Since(start))
	if got[2].pos != pos || string(got[2].payload) != "d" {
		t.Fatalf("third record %v %q; want %v", got[2].pos, got[2].payload, pos)
	}
	d := fw.damage()
	if len(d) < 1 || d[0].Kind != reader.DamageTorn || d[0].Offset != b.pos.Offset {
		t.Fatalf("damage %v; want the torn record first", d)
	}
}

// What the LOCK file's first segment must not do: let a follower pass a
// reservation a live writer holds open in its own segment while it
// appends to the next ones. The writer follows another (its LOCK names
// segment 2, not 1); the follower waits at the reservation in segment 2,
// well past the second between its looks, with segments 3 and 4 full of
// frames, and returns it, then the rest in order, once it is committed.
func TestFollowWaitsForReservationOfWriterAfterAnother(t *testing.T) {
	dir := t.TempDir()
	opts := writer.Options{SegmentSize: segSize, Sync: writer.SyncNone}
	writeSegments(t, dir, "first", 1) // a writer that closed
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if info, err := segment.WriterInfo(dir); err != nil || !info.Alive || info.From != 2 {
		t.Fatalf("LOCK says %+v, %v; want alive, appending from segment 2", info, err)
	}
	res, err := w.Reserve(4)
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Position(); p.Seq != 2 {
		t.Fatalf("reserved at %v; want segment 2", p)
	}
	var last segment.Position
	for last.Seq < 4 {
		if last, err = w.Append([]byte("after the reservation")); err != nil {
			t.Fatal(err)
		}
	}
	r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond,
		Start: reader.At(segment.Position{Seq: 2, Offset: segment.HeaderSize})})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	for r.Next() {
		cancel()
		t.Fatalf("record at %v returned before the reservation at %v was committed", r.Record().Position, res.Position())
	}
	if err := r.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait at the reservation: %v", err)
	}
	cancel()
	copy(res.Bytes(), "held")
	if err := res.Commit(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !r.Next() {
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("reservation committed, not returned: %v", err)
		}
	}
	if x := r.Record(); x.Position != res.Position() || string(x.Payload) != "held" {
		t.Fatalf("first record %v %q; want the reservation's at %v", x.Position, x.Payload, res.Position())
	}
	if err := followUntil(t, r, last); err != nil {
		t.Fatal(err)
	}
}
