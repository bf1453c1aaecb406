package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLock(t *testing.T) {
	dir := t.TempDir()
	if alive, pid, err := WriterAlive(dir); alive || pid != 0 || err != nil {
		t.Fatalf("no LOCK file: alive %v pid %d err %v", alive, pid, err)
	}
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	// OFD locks conflict within one process: a second Open in the same
	// program is refused like another process would be.
	lk2, err := AcquireLock(dir)
	if err == nil {
		lk2.Release()
		t.Fatal("second AcquireLock succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("error %v does not wrap ErrLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("error %q does not name the directory and pid %d", err, os.Getpid())
	}
	alive, pid, err := WriterAlive(dir)
	if !alive || pid != os.Getpid() || err != nil {
		t.Fatalf("while held: alive %v pid %d err %v", alive, pid, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, LockName))
	if err != nil || string(b) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Fatalf("LOCK holds %q (%v)", b, err)
	}
	// Querying does not take the lock: the holder still holds it.
	if _, err := AcquireLock(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("after WriterAlive: %v", err)
	}

	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	if err := lk.Release(); err != nil {
		t.Fatal("second Release:", err)
	}
	var nilLock *Lock
	if nilLock.Release() != nil {
		t.Fatal("nil Release")
	}
	if alive, _, err := WriterAlive(dir); alive || err != nil {
		t.Fatalf("after Release: alive %v err %v", alive, err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockName)); err != nil {
		t.Fatal("Release removed the LOCK file:", err)
	}
	lk3, err := AcquireLock(dir)
	if err != nil {
		t.Fatal("relock:", err)
	}
	lk3.Release()
}

func TestLockFileMode(t *testing.T) {
	// The umask can only take bits away; with the common 022 or 027 the
	// file is exactly 0640. Read it without changing it for long.
	mask := unix.Umask(0o022)
	unix.Umask(mask)
	dir := t.TempDir()
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	st, err := os.Stat(filepath.Join(dir, LockName))
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o640) &^ os.FileMode(mask); st.Mode().Perm() != want || !st.Mode().IsRegular() {
		t.Fatalf("LOCK mode %v, want %v (umask %03o)", st.Mode(), want, mask)
	}
}

func TestLockErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := AcquireLock(missing); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("missing dir: %v", err)
	}
	if alive, _, err := WriterAlive(missing); alive || err != nil {
		t.Fatalf("missing dir: alive %v err %v", alive, err)
	}
	// A LOCK symlink is not followed, by the writer or by the query, nor
	// replaced: the writer refuses, naming it, whether its target is
	// missing (not created) or a file (neither truncated nor locked).
	dir := t.TempDir()
	link := filepath.Join(dir, LockName)
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, existing := range []bool{false, true} {
		if existing {
			if err := os.WriteFile(target, []byte("keep\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}
		lk, err := AcquireLock(dir)
		if err == nil {
			lk.Release()
			t.Fatal("AcquireLock followed a LOCK symlink")
		}
		if !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "symbolic link") || errors.Is(err, ErrLocked) {
			t.Errorf("target exists %v: %v; want an error naming %s as a symbolic link", existing, err, link)
		}
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("the symlink was replaced: %q, %v", got, err)
		}
		b, err := os.ReadFile(target)
		if !existing && !errors.Is(err, os.ErrNotExist) {
			t.Error("AcquireLock created the symlink's target")
		}
		if existing && string(b) != "keep\n" {
			t.Errorf("AcquireLock wrote to the symlink's target: %q, %v", b, err)
		}
		if _, _, err := WriterAlive(dir); err == nil || !strings.Contains(err.Error(), link) {
			t.Fatalf("WriterAlive followed a LOCK symlink: %v", err)
		}
	}
	if alive, _, err := WriterAlive(filepath.Dir(target)); alive || err != nil {
		t.Errorf("the symlink's target was locked: alive %v, %v", alive, err)
	}
}

// AcquireLock locks the LOCK file of the directory it holds open, even
// when another directory takes the path in between (here, two swapped
// over and over). It opened LOCK by path: its 300 tries here failed within
// the first 34 in three runs on 2 cores (15% of 2000 tries measured apart).
// The window is a few microseconds, so this finds the old fault often but
// not by construction.
func TestLockFileInHeldDirectory(t *testing.T) {
	base := t.TempDir()
	dir, other := filepath.Join(base, "log"), filepath.Join(base, "other")
	for _, d := range []string{dir, other} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	swap := func() error { return unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, other, unix.RENAME_EXCHANGE) }
	if err := swap(); err != nil {
		t.Skipf("renameat2(RENAME_EXCHANGE): %v", err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			_ = swap()
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for i := range 300 {
		lk, err := AcquireLock(dir)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		var locked, inDir unix.Stat_t
		err = unix.Fstat(int(lk.f.Fd()), &locked)
		if err == nil {
			err = unix.Fstatat(int(lk.d.Fd()), LockName, &inDir, unix.AT_SYMLINK_NOFOLLOW)
		}
		lk.Release()
		if err != nil || locked.Dev != inDir.Dev || locked.Ino != inDir.Ino {
			t.Fatalf("try %d: the LOCK file locked is not the held directory's (%v)", i, err)
		}
	}
}

// TestLockFileFIFO: a FIFO where LOCK should be is an error at once; the
// open used to block until something wrote to it, hanging verify and tail.
func TestLockFileFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(dir, LockName), 0o640); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, ArchiveName(1)), 0o640); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	go func() { _, _, err := WriterAlive(dir); done <- err }()
	go func() { _, err := AcquireLock(dir); done <- err }()
	go func() { _, err := OpenImage(filepath.Join(dir, ArchiveName(1))); done <- err }()
	for range 3 {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("err = %v, want 'not a regular file'", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("blocked on a FIFO")
		}
	}
}

// A LOCK file removed or replaced under a running writer does not let a
// second writer in (the directory's flock holds), and Check locks a new
// one so that readers still see the writer; a directory moved away from
// its path is reported, and its path is free for another writer.
func TestLockSurvivesRemovedLockFile(t *testing.T) {
	dir := t.TempDir()
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	p := filepath.Join(dir, LockName)
	for _, replace := range []func() error{
		func() error { return os.Remove(p) },
		func() error {
			tmp := p + ".new"
			if err := os.WriteFile(tmp, []byte("1\n"), 0o640); err != nil {
				return err
			}
			return os.Rename(tmp, p)
		},
	} {
		if err := replace(); err != nil {
			t.Fatal(err)
		}
		if lk2, err := AcquireLock(dir); !errors.Is(err, ErrLocked) {
			if err == nil {
				lk2.Release()
			}
			t.Fatalf("second writer after the LOCK file was replaced: %v", err)
		}
		if note, err := lk.Check(); !strings.Contains(note, "locked a new one") || err != nil {
			t.Fatalf("Check: %q, %v", note, err)
		}
		if alive, pid, err := WriterAlive(dir); !alive || pid != os.Getpid() || err != nil {
			t.Fatalf("after the repair: alive %v pid %d err %v", alive, pid, err)
		}
		if note, err := lk.Check(); note != "" || err != nil {
			t.Fatalf("second Check: %q, %v", note, err)
		}
	}
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(moved)
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := lk.Check(); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Check after the directory moved: %v", err)
	}
	lk3, err := AcquireLock(dir)
	if err != nil {
		t.Fatalf("a new directory at the path: %v", err)
	}
	lk3.Release()
}

// With its LOCK file removed, a writer is still seen alive (by its lock on
// the directory), before Check puts a new LOCK file in place.
func TestWriterAliveWithoutLockFile(t *testing.T) {
	dir := t.TempDir()
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, LockName)); err != nil {
		t.Fatal(err)
	}
	if alive, _, err := WriterAlive(dir); !alive || err != nil {
		t.Fatalf("LOCK removed: alive %v, %v", alive, err)
	}
	lk.Release()
	if alive, _, err := WriterAlive(dir); alive || err != nil {
		t.Fatalf("released: alive %v, %v", alive, err)
	}
	if alive, _, err := WriterAlive(filepath.Join(dir, "missing")); alive || err != nil {
		t.Fatalf("no directory: alive %v, %v", alive, err)
	}
}

// Two writers starting at once, each having made a LOCK file of its own
// (LOCK removed between them), never both get in (found by a review of
// the directory lock: checked, then taken, both passed in 5 of 5 of its
// runs; this loop does not reproduce that narrow window reliably: the
// order, taken then checked, is what closes it).
// A Check meeting a LOCK file it cannot lock (a starting writer holds it,
// or it is not a regular file) keeps the writer and tries again later.
func TestLockStartRaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, LockName)
	for i := range 300 {
		var wg sync.WaitGroup
		locks := make([]*Lock, 2)
		for k := range locks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				os.Remove(p)
				locks[k], _ = AcquireLock(dir)
			}()
		}
		wg.Wait()
		if locks[0] != nil && locks[1] != nil {
			t.Fatalf("iteration %d: two writers hold %s", i, dir)
		}
		for _, l := range locks {
			l.Release()
		}
	}
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if note, err := lk.Check(); err != nil || !strings.Contains(note, "will retry") {
		t.Fatalf("Check with a FIFO as LOCK: %q, %v", note, err)
	}
	if alive, _, err := WriterAlive(dir); err == nil && !alive {
		t.Fatal("writer not seen alive with a FIFO as LOCK")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if note, err := lk.Check(); err != nil || !strings.Contains(note, "locked a new one") {
		t.Fatalf("Check after the FIFO went: %q, %v", note, err)
	}
}
