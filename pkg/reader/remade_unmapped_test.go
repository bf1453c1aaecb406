package reader_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// A writer that cannot map a file it made ahead (here: truncated under
// it) removes it and makes that number again, within one log. A follower
// already in the file, placed there by At, kept the removed file's
// mapping and passed over every record appended to the new one. The cut
// file is damage, reported once; the records of the file made again must
// all be read, in order.
func TestFollowerInAFileTheWriterCouldNotMap(t *testing.T) {
	dir := t.TempDir()
	seg3 := filepath.Join(dir, segment.FileName(3))
	var cut atomic.Bool
	fs := &crashtest.FaultFS{}
	fs.After = func(c crashtest.Call) {
		if c.Op == crashtest.OpRename && c.Err == nil && c.Path == seg3+segment.TempExt && cut.CompareAndSwap(false, true) {
			if err := os.Truncate(seg3, 8192); err != nil {
				t.Error(err)
			}
		}
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append([]byte("first")); err != nil {
		t.Fatal(err)
	}
	waitFile(t, seg3)
	for deadline := time.Now().Add(10 * time.Second); !cut.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("segment 3 was not cut")
		}
	}
	r, dmgp := openInThree(t, dir)
	dmg := *dmgp
	// The cut file is read as far as it goes, past the report (a short
	// file is padded to its header's size in memory, not mapped).
	if len(dmg) != 1 || dmg[0].Path != seg3 {
		t.Fatalf("the follower reported %v, want the cut segment 3 (it is in it)", dmg)
	}
	old, err := segment.ReadHeader(seg3)
	if err != nil {
		t.Fatal(err)
	}
	followed := followTo(t, r)
	var last segment.Position
	for i, deadline := 0, time.Now().Add(20*time.Second); last.Seq < 5; i++ {
		pos, err := w.Append(fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", 1000)))
		switch {
		case err == nil:
			last = pos
		case time.Now().After(deadline):
			t.Fatalf("appending: %v", err)
		default:
			time.Sleep(time.Millisecond) // the preparer makes segment 3 again after 20ms
		}
	}
	// By its header: the new file may have the removed one's inode
	// number, which the follower's copy of it did not keep.
	if now, err := segment.ReadHeader(seg3); err != nil || now.Created == old.Created {
		t.Fatalf("the writer did not make segment 3 again: %v", err)
	}
	all, replayDmg := readAll(t, dir, reader.Options{Start: reader.At(segment.Position{Seq: 3, Offset: segment.HeaderSize})})
	if len(replayDmg) != 0 || all[0].pos.Seq != 3 || all[len(all)-1].pos != last {
		t.Fatalf("replay from 3:64: %d records, %v to %v; damage %v", len(all), all[0].pos, all[len(all)-1].pos, replayDmg)
	}
	sameRecs(t, followed(last), all)
	if dmg = *dmgp; len(dmg) != 1 || dmg[0].Kind != reader.DamageSegment || dmg[0].Path != seg3 {
		t.Fatalf("the follower reported %v, want the cut file once", dmg)
	}
}
