package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/edsrzf/mmap-go"
)

// A follower that lags many segments behind while the log goes on as it
// does in service: writers closing and opening again, one killed in the
// segment the last one left empty (the next writer's recovery seals it
// and goes on in a new one), compress-finished archiving every sealed
// segment, retention removing the oldest, the follower's own included.
// None of it is a log begun again: the look at each segment the follower
// opens (304787f) must not stop it, in order or in bulk. It reads the
// records of the segments still there when it comes to them, in order,
// up to the last writer's last, and reports the others removed.
func TestLaggingFollowerNotStoppedByServiceLife(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		t.Run(fmt.Sprint("bulk=", bulk), func(t *testing.T) {
			dir := t.TempDir()
			writeSegments(t, dir, "a", 6)
			var (
				got    []segment.Position
				dmg    []reader.Damage
				last   segment.Position
				killed uint64
				went   bool
			)
			// The follower lags from its first record or bulk write: the
			// log goes on without it.
			goOn := func() {
				if went {
					return
				}
				went = true
				retain(t, dir, 4)
				writeSegments(t, dir, "b", 12)
				retain(t, dir, 4)
				killed = killedWriter(t, dir, 5)
				last = writeSegments(t, dir, "c", 18)
				retain(t, dir, 8)
			}
			opts := reader.Options{Follow: true, PollMax: 10 * time.Millisecond,
				OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }}
			if bulk {
				opts.Bulk = &reader.Bulk{Workers: 1,
					Append: func(dst []byte, pos reader.Position, _ int64, _ []byte) []byte {
						return fmt.Appendf(dst, "%d %d\n", pos.Seq, pos.Offset)
					},
					Write: func(p []byte, _ reader.Position) error {
						goOn()
						for line := range bytes.Lines(p) {
							var pos segment.Position
							if _, err := fmt.Sscan(string(line), &pos.Seq, &pos.Offset); err != nil {
								return err
							}
							got = append(got, pos)
						}
						return nil
					}}
			}
			r, err := reader.Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for {
				for r.Next() {
					got = append(got, r.Record().Position)
					goOn()
				}
				if err := r.Err(); err != nil {
					t.Fatalf("after %d records, at %v: %v", len(got), got[len(got)-1], err)
				}
				if n := len(got); went && got[n-1] == last {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := r.Wait(ctx)
				cancel()
				if err != nil {
					t.Fatalf("after %d records, at %v, want %v: %v", len(got), got[len(got)-1], last, err)
				}
			}
			for i := 1; i < len(got); i++ {
				if got[i].Compare(got[i-1]) <= 0 {
					t.Fatalf("record %d at %v after %v", i, got[i], got[i-1])
				}
			}
			for _, d := range dmg {
				if d.Kind != reader.DamageRemoved {
					t.Errorf("damage: %v", d)
				}
			}
			if !r.SameLog() {
				t.Fatal("SameLog false")
			}
			n := 0
			for _, p := range got {
				if p.Seq == killed {
					n++
				}
			}
			if n != 5 {
				t.Fatalf("%d records of the killed writer's segment %d, want 5", n, killed)
			}
		})
	}
}

// retain runs compress-finished, then removes all but the newest keep
// segments, oldest first, as retention does.
func retain(t *testing.T, dir string, keep int) {
	t.Helper()
	if _, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Segments[:max(len(l.Segments)-keep, 0)] {
		if err := os.Remove(e.Path); err != nil {
			t.Fatal(err)
		}
	}
}

// killedWriter continues in the newest segment of dir, which a closing
// writer left empty, appends n records and dies there without END or
// footer, as kill -9 leaves it. It returns that segment's number. A
// writer closed before its preparer made the next segment left none
// (the newest is sealed): killedWriter then makes it, as a writer that
// died right after making it would have.
func killedWriter(t *testing.T, dir string, n int) uint64 {
	t.Helper()
	lk, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := ls.Last()
	if !ok || e.Archived {
		t.Fatalf("newest segment %+v", e)
	}
	if _, err := segment.SealedFooter(e.Path); err == nil {
		e.Seq++
		e.Path = filepath.Join(dir, segment.FileName(e.Seq))
		if err := os.WriteFile(e.Path, segment.NewImage(e.Seq, segSize, time.Now().UnixNano()), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(e.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mmap.Map(f, mmap.RDWR, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := &liveLog{t: t, dir: dir, lock: lk, size: segSize, seq: e.Seq, m: m, off: segment.HeaderSize}
	for i := range n {
		l.append(fmt.Appendf(nil, "killed %d", i))
	}
	l.die()
	l.close()
	if _, err := segment.SealedFooter(filepath.Join(dir, segment.FileName(e.Seq))); !errors.Is(err, segment.ErrNoFooter) {
		t.Fatalf("killed writer's segment: %v", err)
	}
	return e.Seq
}
