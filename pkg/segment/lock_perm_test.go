package segment

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the uid and gid the permission tests read as: a user who
// owns nothing the tests make and is in none of their groups.
const nobody = 65534

// asNobody runs f on an OS thread of its own whose file system uid and
// gid are nobody's: the kernel checks that thread's opens as that user's
// (a root thread's fsuid set to another drops its capability to pass
// them), and the rest of the process stays root. The thread is never
// unlocked, so it ends with f's goroutine. The directories up to dir are
// opened to others, as a log an auditor reads is.
func asNobody(t *testing.T, dir string, f func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to read as another user")
	}
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(secret)
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		unix.Setfsgid(nobody)
		unix.Setfsuid(nobody)
		if _, err := os.Open(secret); !errors.Is(err, os.ErrPermission) {
			done <- errors.New("the thread still reads root's files")
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A reader who may not open LOCK (an auditor in the log's group when the
// writer made LOCK under umask 077, or another user) still learns whether
// a writer is alive, from the directory lock every writer holds: it is
// not an error, nor is a live writer taken for a dead one (verify then
// called its work in progress a crash's leftovers, exit 3).
func TestWriterAliveLockFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	lk, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	if err := os.Chmod(filepath.Join(dir, LockName), 0o600); err != nil {
		t.Fatal(err)
	}
	var w Writer
	asNobody(t, dir, func() { w, err = WriterInfo(dir) })
	if !w.Alive || err != nil {
		t.Fatalf("writer alive, LOCK unreadable: %+v, %v", w, err)
	}
	lk.Release()
	asNobody(t, dir, func() { w, err = WriterInfo(dir) })
	if w.Alive || err != nil {
		t.Fatalf("writer gone, LOCK unreadable: %+v, %v", w, err)
	}
}
