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

// A copy of another segment put in the directory under a later name (cp
// 1.seg 9.seg) is no sign that the writer moved past a segment ending in
// zeros: its header names another sequence, and no writer rotated into
// it. These tests put a follower at the empty segment a closing writer
// leaves (closedWriterLog: segment 2) and a copy of segment 1 after it.

// TestFollowerStaysInTheLiveSegmentBeforeACopy: a writer starts and
// continues in segment 2 just after the follower found no writer there
// (the race TestNotPassedWhenAWriterCameBack sets up: atTail runs with the
// reader's view from before), and a copy of segment 1 appears as segment
// 9, past the files the writer creates ahead. laterHasFrames took the
// copy's first commit word for frames, and the follower left segment 2
// before the writer appended there: tail -f never printed those records.
// The copy keeps segment 1's header, or has it rewritten to name 9: its
// frames still fail their CRCs as segment 9's.
func TestFollowerStaysInTheLiveSegmentBeforeACopy(t *testing.T) {
	for _, rewrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("header-rewritten=%v", rewrite), func(t *testing.T) {
			dir := closedWriterLog(t)
			r := followToEmptySegment(t, dir)
			c := r.cur
			w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// The files the writer keeps ahead (the next three): the copy
			// lies past them, where only laterHasFrames looks.
			waitForFile(t, filepath.Join(dir, segment.FileName(c.seq+3)))
			b := copySegment(t, dir, 1, 9)
			if rewrite {
				h, err := segment.DecodeHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				h.Seq = 9
				h.Encode(b)
				if err := os.WriteFile(filepath.Join(dir, segment.FileName(9)), b, 0o640); err != nil {
					t.Fatal(err)
				}
			}

			r.alive, c.parked = false, false
			if !r.atTail(c) && r.err != nil {
				t.Fatal(r.err)
			}
			var want []string
			for i := range 20 {
				p := fmt.Sprintf("live %d", i)
				pos, err := w.Append([]byte(p))
				if err != nil {
					t.Fatal(err)
				}
				if pos.Seq != c.seq {
					t.Fatalf("the writer appended in segment %d, want %d", pos.Seq, c.seq)
				}
				want = append(want, p)
			}
			sameStrings(t, readFor(t, r, len(want)), want)
		})
	}
}

// TestFollowerWaitsBeforeACopyForTheNextWriter: no writer holds the log;
// the copy is segment 3, the next file, and holds bytes. The follower
// must still wait at segment 2, which the next writer continues in once
// the copy is gone again (removed as the mistake it was): it passed
// segment 2 for the copy's first frame (laterHasFrames) or its bytes
// (laterHoldsBytes), returned the copy's record, and then never returned
// the writer's records in segment 2.
func TestFollowerWaitsBeforeACopyForTheNextWriter(t *testing.T) {
	dir := closedWriterLog(t)
	copySegment(t, dir, 1, 3)
	r := followToEmptySegment(t, dir)
	if err := os.Remove(filepath.Join(dir, segment.FileName(3))); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	pos, err := w.Append([]byte("next writer"))
	if err != nil {
		t.Fatal(err)
	}
	if pos.Seq != 2 {
		t.Fatalf("the next writer appended in segment %d, want 2", pos.Seq)
	}
	sameStrings(t, readFor(t, r, 1), []string{"next writer"})
}

// TestFollowerPassesSegmentBeforeSealedWithTornFirstFrame: a writer holds
// the log; segment 2 lost its END (zeros after its record), and segment
// 3 after it is sealed, its first frame damaged. Segments are sealed in
// order, so segment 2 is finished: the follower reports its zeros and
// reads on, although no later segment's first frame passes its check.
func TestFollowerPassesSegmentBeforeSealedWithTornFirstFrame(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UnixNano()
	var prev [segment.DigestSize]byte
	images := map[uint64][]byte{}
	for seq := uint64(1); seq <= 3; seq++ {
		img := segment.NewImage(seq, segment.MinSegmentSize, now)
		off := segment.PutFrame(img, seq, segment.HeaderSize, segment.TypeData, now, fmt.Appendf(nil, "s%d a", seq))
		off = segment.PutFrame(img, seq, off, segment.TypeData, now, fmt.Appendf(nil, "s%d b", seq))
		if seq != 2 {
			segment.PutEnd(img, seq, off, now)
			f, err := segment.Seal(img, prev, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			prev = f.Digest
		}
		images[seq] = img
	}
	images[3][segment.HeaderSize+segment.FrameHeaderSize] ^= 1 // the first payload
	for seq, img := range images {
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	lk, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	var dmg []Damage
	r, err := Open(dir, Options{Follow: true, OnDamage: func(d Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sameStrings(t, readFor(t, r, 5), []string{"s1 a", "s1 b", "s2 a", "s2 b", "s3 b"})
	if len(dmg) != 2 || dmg[0].Seq != 2 || dmg[0].Kind != DamageTorn || dmg[1].Seq != 3 || dmg[1].Kind != DamageTorn {
		t.Fatalf("damage %v, want segment 2's zeros and segment 3's first frame torn", dmg)
	}
}

// followToEmptySegment opens a follower on closedWriterLog's dir and reads
// its one record: it then waits at the start of the empty segment 2, no
// writer holding the log.
func followToEmptySegment(t *testing.T, dir string) *Reader {
	t.Helper()
	r, err := Open(dir, Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if !r.Next() || string(r.Record().Payload) != "first" {
		t.Fatalf("not the record of segment 1: %v", r.Err())
	}
	if r.Next() {
		t.Fatalf("record %v %q after segment 1: the empty segment 2 was passed", r.Record().Position, r.Record().Payload)
	}
	c := r.cur
	if c == nil || c.seq != 2 || !c.parked || c.off != segment.HeaderSize || r.alive {
		t.Fatalf("the follower does not wait at the start of the empty segment 2: %+v, alive %v", c, r.alive)
	}
	return r
}

// copySegment copies segment from's file to segment to's name and
// returns its bytes.
func copySegment(t *testing.T, dir string, from, to uint64) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, segment.FileName(from)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(to)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitForFile waits until path exists.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Lstat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not created within 10s", path)
		}
	}
}

// readFor reads records from r, a follower, until it has n of them or
// ten seconds passed, and returns their payloads.
func readFor(t *testing.T, r *Reader, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		for len(got) < n && r.Next() {
			got = append(got, string(r.Record().Payload))
		}
		if len(got) < n {
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("%v after %d of %d records %q", err, len(got), n, got)
			}
		}
	}
	return got
}

func sameStrings(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
}
