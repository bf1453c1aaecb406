package reader_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A follower in an empty segment (At 3:64, the one a closing writer left
// for the next) whose file is removed, and not made again, while a later
// segment comes to hold frames: retention removed it with the segments
// below it (the next writer's records in it went with it), or a hand took
// it from between two segments. The follower reported it unfinished
// (crash residue that writer.Open seals: a warning in tail) from the
// removed file's zeros, and passed it. It must report it as it reports
// any listed segment found gone when it opens it: removed by retention
// (DamageRemoved), or a hole in the log (DamageMissing); then read the
// later segment.
func TestFollowerInARemovedEmptySegment(t *testing.T) {
	for _, c := range []struct {
		name  string
		below bool // segments 1 and 2 stay
		want  reader.DamageKind
	}{
		{"retention", false, reader.DamageRemoved},
		{"by hand", true, reader.DamageMissing},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			closeWithThreeMade(t, dir) // 1 and 2 sealed, 3 empty
			var dmg []reader.Damage
			r, err := reader.Open(dir, reader.Options{Follow: true, PollMax: 10 * time.Millisecond,
				Start:    reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize}),
				OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Next() {
				t.Fatalf("record at %v in an empty segment", r.Record().Position)
			}
			remove := []uint64{3}
			if !c.below {
				remove = append(remove, 1, 2)
			}
			for _, seq := range remove {
				if err := os.Remove(filepath.Join(dir, segment.FileName(seq))); err != nil {
					t.Fatal(err)
				}
			}
			im := segment.NewImage(4, segSize, time.Now().UnixNano())
			segment.PutFrame(im, 4, segment.HeaderSize, segment.TypeData, time.Now().UnixNano(), []byte("in 4"))
			if err := os.WriteFile(filepath.Join(dir, segment.FileName(4)), im, 0o640); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("Wait for the record in segment 4: %v", err)
			}
			if !r.Next() || r.Record().Position != (segment.Position{Seq: 4, Offset: segment.HeaderSize}) {
				t.Fatalf("got %v, want the record at 4:64: %v", r.Record().Position, r.Err())
			}
			if len(dmg) != 1 || dmg[0].Kind != c.want || dmg[0].Seq != 3 || dmg[0].Len != 1 {
				t.Fatalf("damage %v, want one %v of segment 3", dmg, c.want)
			}
		})
	}
}

// A follower in an empty segment 1 reads a segment 1 made again, whichever
// log made it (TestFollowerInAnEmptySegmentOne). A new log whose segment 1
// its own retention removed before the follower looked is read on from
// its oldest segment, segment 1 reported removed.
func TestFollowerInAnEmptySegmentOneNewLogRetained(t *testing.T) {
	dir := t.TempDir()
	opts := unreadStarts[0].old(t, dir) // Open and Close: segment 1, empty
	var dmg []reader.Damage
	opts.Follow, opts.PollMax = true, 10*time.Millisecond
	opts.OnDamage = func(d reader.Damage) { dmg = append(dmg, d) }
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Next() {
		t.Fatalf("record at %v in an empty log", r.Record().Position)
	}
	testfs.Empty(t, dir)
	last := writeSegments(t, dir, "new", 3)
	if err := os.Remove(filepath.Join(dir, segment.FileName(1))); err != nil {
		t.Fatal(err)
	}
	all, _ := readAll(t, dir, reader.Options{})
	sameRecs(t, followTo(t, r)(last), all)
	if len(dmg) != 1 || dmg[0].Kind != reader.DamageRemoved || dmg[0].Seq != 1 || dmg[0].Len != 1 {
		t.Fatalf("damage %v, want segment 1 removed", dmg)
	}
}

// closeWithThreeMade writes segments 1 and 2 and closes the writer once
// it has made segment 3 ahead, which its Close then leaves, empty, for the
// next Open. Made in the background: closed before that, it leaves none.
func closeWithThreeMade(t *testing.T, dir string) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	var pos segment.Position
	for i := 0; pos.Seq < 2; i++ {
		if pos, err = w.Append(fmt.Appendf(nil, "old %d %s", i, strings.Repeat("x", 1000))); err != nil {
			t.Fatal(err)
		}
	}
	waitFile(t, filepath.Join(dir, segment.FileName(3)))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
