package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock is the writer's exclusive hold on a log directory.
//
// It is an open-file-description (OFD) record lock on the LOCK file, not
// flock(2): OFD locks conflict between two opens in the same process as well
// as between processes, are released by the kernel when the holder dies, and
// can be queried with F_OFD_GETLK without taking them, so a reader asking
// "is a writer alive?" never blocks a writer that starts at that moment.
type Lock struct {
	f *os.File
}

func lockRange(typ int16) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
}

// AcquireLock takes the writer lock of dir, or fails at once with an error
// wrapping ErrLocked that names the directory and the holder's pid.
func AcquireLock(dir string) (*Lock, error) {
	p := filepath.Join(dir, LockName)
	f, err := openLockFile(p, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	lk := lockRange(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%s: %w (held by pid %d)", dir, ErrLocked, readPID(p))
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	// The pid is informational (for the error above); the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock. The LOCK file stays: removing it would race with
// a writer opening it.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the description releases the OFD lock
	l.f = nil
	return err
}

// WriterAlive reports whether a writer holds the lock of dir, and its pid
// as recorded in the lock file. A directory without a LOCK file has no
// writer.
func WriterAlive(dir string) (alive bool, pid int, err error) {
	p := filepath.Join(dir, LockName)
	f, err := openLockFile(p, os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	lk := lockRange(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, 0, fmt.Errorf("query lock %s: %w", p, err)
	}
	if lk.Type == unix.F_UNLCK {
		return false, 0, nil
	}
	return true, readPID(p), nil
}

// openLockFile opens the LOCK file, which must be a regular file: with
// O_NONBLOCK a FIFO put there fails here instead of blocking the open (and
// every verify and tail of the log) until something writes to it.
func openLockFile(p string, flag int) (*os.File, error) {
	f, err := os.OpenFile(p, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o640)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = errors.New("not a regular file")
		}
		return nil, fmt.Errorf("lock file %s: %w", p, err)
	}
	return f, nil
}

func readPID(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
