package writer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestDiskFull: the file system fills up while records are appended. Append
// returns an error wrapping ENOSPC that names the segment it could not
// create, instead of a SIGBUS (segments are fallocated before they are
// mapped); every record acknowledged before stays readable; and once space
// is freed, appending resumes without reopening.
func TestDiskFull(t *testing.T) {
	mnt := testfs.Small(t, "1m")
	dir := filepath.Join(mnt, "log")
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncInterval, SyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	filler := testfs.Fill(t, mnt)
	acked := map[segment.Position][]byte{}
	var full error
	for i := 0; i < 20000 && full == nil; i++ {
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err != nil {
			full = err
			break
		}
		acked[pos] = p
	}
	if full == nil {
		t.Fatal("20000 appends on a full file system all succeeded")
	}
	if !errors.Is(full, syscall.ENOSPC) || !strings.Contains(full.Error(), dir) {
		t.Fatalf("Append on a full disk: %v; want an error wrapping ENOSPC naming the segment file", full)
	}
	if _, err := w.Reserve(10); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Reserve on a full disk: %v", err)
	}
	if err := w.Sync(); err != nil {
		t.Fatalf("Sync of what was acknowledged, disk full: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumed := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p := faultPayload(-1)
		pos, err := w.Append(p)
		if err == nil {
			acked[pos], resumed = p, true
			break
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append after space was freed: %v", err)
		}
	}
	if !resumed {
		t.Fatal("appending did not resume within 5 s of space being freed")
	}
	for i := range 1000 { // through more rotations
		p := faultPayload(i)
		pos, err := w.Append(p)
		if err != nil {
			t.Fatalf("append %d after space was freed: %v", i, err)
		}
		acked[pos] = p
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, bad := payloads(t, dir)
	for _, s := range bad {
		t.Error(s)
	}
	for p, b := range acked {
		if string(got[p]) != string(b) {
			t.Fatalf("acknowledged record at %v lost or changed (%d acknowledged)", p, len(acked))
		}
	}
	t.Logf("SUMMARY TestDiskFull: acknowledged=%d lost=0 first_error=%q", len(acked), full)
}

// TestDiskFullAtOpen: a full file system makes Open fail with ENOSPC (it
// cannot create the first segment) and leave no half-made segment; after
// space is freed Open succeeds and recovers nothing.
func TestDiskFullAtOpen(t *testing.T) {
	mnt := testfs.Small(t, "256k")
	dir := filepath.Join(mnt, "log")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	filler := testfs.Fill(t, mnt)
	_, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open on a full disk: %v, want ENOSPC", err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments) != 0 || len(l.Temps) != 0 {
		t.Fatalf("a failed Open left segments %v, temporary files %v", l.Segments, l.Temps)
	}
	os.Remove(filler)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("Open after space was freed: %v", err)
	}
	if st := w.Recovered(); st != (writer.Stats{}) {
		t.Errorf("recovery after a failed Open: %+v", st)
	}
	if _, err := w.Append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenOutOfInodesLeavesNoParents: Open of a/b/c/log on a file system
// with inodes for two directories only fails, and removes a and b again,
// as it does the directories it made when the first segment cannot be:
// os.MkdirAll kept them (found by a hostile-user review).
func TestOpenOutOfInodesLeavesNoParents(t *testing.T) {
	mnt := testfs.Small(t, "1m,nr_inodes=3") // the root and two more
	_, err := writer.Open(filepath.Join(mnt, "a", "b", "c", "log"), writer.Options{SegmentSize: 64 << 10})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open with no inode left: %v, want ENOSPC", err)
	}
	if left, _ := os.ReadDir(mnt); len(left) != 0 {
		t.Fatalf("a failed Open left %v in %s", left, mnt)
	}
}
