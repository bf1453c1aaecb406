package segment

import (
	"os"
	"path/filepath"
	"testing"
)

// LOCK names the first segment its writer appends to once Appending said
// so, keeps naming it in a LOCK file the writer makes again (Check), and
// only while the lock is held: a released LOCK, or one put in place of
// the held file, says nothing of a live writer. A line not written whole
// is not believed.
func TestLockNamesFirstSegmentAppended(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, LockName)
	want := func(step string, alive bool, pid int, from uint64) {
		t.Helper()
		w, err := WriterInfo(dir)
		if err != nil || w != (Writer{Alive: alive, PID: pid, From: from}) {
			t.Fatalf("%s: %+v, %v; want alive %v, pid %d, from %d", step, w, err, alive, pid, from)
		}
	}
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	want("locked", true, os.Getpid(), 0)
	if err := lk.Appending(7); err != nil {
		t.Fatal(err)
	}
	want("appending", true, os.Getpid(), 7)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	want("LOCK removed", true, 0, 0)
	if _, err := lk.Check(); err != nil {
		t.Fatal(err)
	}
	want("LOCK made again", true, os.Getpid(), 7)
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	want("released", false, 0, 0)
	for content, from := range map[string]uint64{"12\nfrom 9\n": 9, "12\nfrom 9": 0, "12\nfrom x\n": 0, "12\n": 0} {
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		w := readLock(f)
		f.Close()
		if w.PID != 12 || w.From != from {
			t.Errorf("LOCK %q read as %+v; want pid 12, from %d", content, w, from)
		}
	}
}
