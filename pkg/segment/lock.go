package segment

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Lock is the writer's exclusive hold on a log directory.
//
// It is an open-file-description (OFD) record lock on the LOCK file, not
// flock(2): OFD locks conflict between two opens in the same process as well
// as between processes, are released by the kernel when the holder dies, and
// can be queried with F_OFD_GETLK without taking them, so a reader asking
// "is a writer alive?" never blocks a writer that starts at that moment.
//
// A lock on a file a user can delete is not enough on its own: with LOCK
// removed (or replaced), a second writer would lock a new LOCK file and
// recover the first writer's active segment under it. So the writer also
// holds an OFD read lock on the directory itself, which no file operation
// inside it can undo, and a writer starting (or a reader asking) looks for
// one. A read lock because a directory cannot be opened for writing; it
// excludes nothing by itself: F_OFD_GETLK finds it. (compress-finished
// takes flock(2) on the directory, which is independent of these locks.)
// Check repairs a removed LOCK file and detects a directory moved away
// from its path.
type Lock struct {
	mu   sync.Mutex // Check and Release may run on different goroutines
	f    *os.File   // LOCK, OFD write-locked
	d    *os.File   // the directory, OFD read-locked
	dir  string
	from uint64 // the first segment the writer appends to (Appending), 0 before
}

func lockRange(typ int16) unix.Flock_t {
	return unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
}

// AcquireLock takes the writer lock of dir, or fails at once with an error
// wrapping ErrLocked that names the directory and the holder's pid.
func AcquireLock(dir string) (*Lock, error) {
	return AcquireLockContext(context.Background(), dir)
}

// AcquireLockContext is AcquireLock whose wait for a lease's break on
// LOCK ends when ctx is done (OpenNoFollowContext), holding nothing then.
func AcquireLockContext(ctx context.Context, dir string) (*Lock, error) {
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// LOCK through the directory just opened, not its path: a directory
	// renamed and replaced in between would have us lock another log's.
	f, err := lockFileIn(ctx, d, dir, 0)
	if err != nil {
		d.Close()
		return nil, err
	}
	// Take the directory's read lock first, then look for another: a look
	// before taking it would let two writers starting at once (each with
	// a LOCK file of its own, LOCK having been removed) both pass. Our own
	// lock is not reported to us; two such writers see each other and
	// both refuse.
	lk := lockRange(unix.F_RDLCK)
	if lerr := unix.FcntlFlock(d.Fd(), unix.F_OFD_SETLK, &lk); lerr != nil {
		err = fmt.Errorf("lock %s: %w", dir, lerr)
	} else if held, lerr := dirLocked(d); lerr != nil {
		err = lerr
	} else if held {
		err = fmt.Errorf("%s: %w (held by a writer whose LOCK file was removed or replaced)", dir, ErrLocked)
	}
	if err != nil {
		f.Close()
		d.Close()
		return nil, err
	}
	return &Lock{f: f, d: d, dir: dir}, nil
}

// dirLocked reports whether another open file description holds a lock
// on the directory open as d (a writer's read lock).
func dirLocked(d *os.File) (bool, error) {
	lk := lockRange(unix.F_WRLCK)
	if err := unix.FcntlFlock(d.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("query lock of %s: %w", d.Name(), err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// lockFileIn opens (or creates) the LOCK file of the directory open as d
// (dir is its path, for messages), takes its OFD lock and writes the pid
// (and from, if not 0: lockContent) into it. Relative to d, never through
// dir: the LOCK locked is the held directory's wherever that directory is
// now, for AcquireLock and for Check's repair alike, never that of
// another directory that took the path meanwhile (a new log's, whose
// writer would then find its own LOCK locked by us). ctx ends the wait
// for a lease's break.
func lockFileIn(ctx context.Context, d *os.File, dir string, from uint64) (*os.File, error) {
	p := filepath.Join(dir, LockName)
	// O_NONBLOCK, against a FIFO there; for writing, the open conflicts
	// with any lease (an NFS server's read delegation), whose break it
	// waits for as a blocking open would (WaitLease).
	var fd int
	err := WaitLease(ctx, func() (err error) {
		fd, err = unix.Openat(int(d.Fd()), LockName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o640)
		return err
	})
	if err != nil {
		return nil, lockOpenError(&os.PathError{Op: "open", Path: p, Err: err})
	}
	f, err := regularLockFile(os.NewFile(uintptr(fd), p))
	if err != nil {
		return nil, err
	}
	return lockOpened(f, dir, from)
}

// lockOpened takes the OFD lock of the LOCK file f of dir and writes the
// pid (and from, if not 0) into it.
func lockOpened(f *os.File, dir string, from uint64) (*os.File, error) {
	p := f.Name()
	lk := lockRange(unix.F_WRLCK)
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			// From the file locked, not by its name again: that open
			// could meet another file (a FIFO, and block) put there since.
			return nil, fmt.Errorf("%s: %w (held by pid %d)", dir, ErrLocked, readLock(f).PID)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	// The pid is informational (for the error above); the lock is what
	// counts. Truncated first: a reader takes no line from a writer
	// before this one (lockContent).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(lockContent(from), 0)
	}
	return f, nil
}

// lockContent is what LOCK holds: the pid on the first line and, once the
// writer has recovered the log, "from N" on the second, N being the first
// segment it appends to (FORMAT.md section 9). The second line only ever
// follows the first as written here, so a read racing the write sees the
// pid alone, or both lines whole.
func lockContent(from uint64) []byte {
	b := strconv.AppendInt(nil, int64(os.Getpid()), 10)
	b = append(b, '\n')
	if from > 0 {
		b = append(b, "from "...)
		b = strconv.AppendUint(b, from, 10)
		b = append(b, '\n')
	}
	return b
}

// Appending records in LOCK that the writer appends to segment seq and
// the ones after it only: recovery is over, and every segment below seq
// is finished for it, whatever it holds (one recovery left unsealed,
// damaged, included). Readers waiting at such a segment for frames a
// live writer might commit stop waiting (WriterInfo). The error is the
// write's; LOCK then says nothing of it, and readers wait as before.
func (l *Lock) Appending(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil // released
	}
	l.from = seq
	// Not truncated: the pid line is written again as it is, the line
	// after it added.
	if _, err := l.f.WriteAt(lockContent(seq), 0); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	return nil
}

// Check reports whether the lock still holds dir as AcquireLock took it.
// The error (wrapping ErrLockLost) is for a directory no longer at its
// path (moved, or removed): files the writer creates under the path would
// land in another directory, which a second writer may hold. A LOCK file
// removed or replaced is locked again and note says so; if that fails (a
// writer starting at that moment holds the new one and will be refused by
// the directory lock, or the name is not a regular file), note says so
// and the next Check tries again: the directory lock keeps other writers
// out meanwhile, and only readers' view of the writer (WriterAlive reads
// the directory lock too) and the pid in LOCK are affected.
func (l *Lock) Check() (note string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return "", nil // released
	}
	var held, now unix.Stat_t
	if err := unix.Fstat(int(l.d.Fd()), &held); err != nil {
		return "", fmt.Errorf("check lock of %s: %w", l.dir, err)
	}
	switch err := unix.Stat(l.dir, &now); {
	case errors.Is(err, unix.ENOENT) || err == nil && (now.Dev != held.Dev || now.Ino != held.Ino):
		return "", fmt.Errorf("%s: %w: the log directory was moved, replaced or removed while this writer held it (its segments are where it went)", l.dir, ErrLockLost)
	case err != nil:
		return fmt.Sprintf("cannot check the log directory (will retry): %v", err), nil
	}
	if err := unix.Fstat(int(l.f.Fd()), &held); err != nil {
		return "", fmt.Errorf("check lock of %s: %w", l.dir, err)
	}
	// Through the directory held, not its path: it may have been moved
	// since the check above, and another log created at the path.
	if err := unix.Fstatat(int(l.d.Fd()), LockName, &now, unix.AT_SYMLINK_NOFOLLOW); err == nil && now.Dev == held.Dev && now.Ino == held.Ino {
		return "", nil
	}
	f, err := lockFileIn(context.Background(), l.d, l.dir, l.from)
	if err != nil {
		return fmt.Sprintf("the LOCK file was removed or replaced and cannot be locked again now (will retry): %v", err), nil
	}
	l.f.Close()
	l.f = f
	return "the LOCK file was removed or replaced; locked a new one", nil
}

// Release drops the lock. The LOCK file stays: removing it would race with
// a writer opening it.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	// The directory first: a writer starting in between then finds LOCK
	// held and says so, instead of blaming a removed LOCK file.
	err := l.d.Close()
	if ferr := l.f.Close(); err == nil {
		err = ferr // closing the description releases the OFD lock
	}
	l.f, l.d = nil, nil
	return err
}

// ReleaseRemoving is Release for a writer that created the directory and
// failed before putting anything in it (a full disk): LOCK and the
// directory are removed, an empty log directory being litter. Both go
// while the lock is still held, so no writer starting meanwhile can take
// the directory over and then find it gone: one that opened it is
// refused by the directory lock, and finds nothing to open once the
// lock is released. Nothing is removed unless LOCK is the only entry and
// both are still those the lock holds; removed reports whether the
// directory went.
func (l *Lock) ReleaseRemoving() (removed bool, err error) {
	if l == nil {
		return false, nil
	}
	l.mu.Lock()
	if l.f != nil && l.onlyLock() {
		removed = unix.Unlinkat(int(l.d.Fd()), LockName, 0) == nil && unix.Rmdir(l.dir) == nil
	}
	l.mu.Unlock()
	return removed, l.Release()
}

// onlyLock reports whether the held directory is still at its path and
// holds nothing but the LOCK file locked.
func (l *Lock) onlyLock() bool {
	var held, now unix.Stat_t
	if unix.Fstat(int(l.d.Fd()), &held) != nil || unix.Stat(l.dir, &now) != nil || held.Dev != now.Dev || held.Ino != now.Ino {
		return false
	}
	if unix.Fstat(int(l.f.Fd()), &held) != nil || unix.Fstatat(int(l.d.Fd()), LockName, &now, unix.AT_SYMLINK_NOFOLLOW) != nil || held.Dev != now.Dev || held.Ino != now.Ino {
		return false
	}
	names, err := l.d.Readdirnames(-1)
	return err == nil && len(names) == 1 && names[0] == LockName
}

// WriterAlive reports whether a writer holds the lock of dir, and its pid
// as recorded in the lock file (0 when its LOCK file was removed). A
// directory that does not exist has no writer.
func WriterAlive(dir string) (alive bool, pid int, err error) {
	w, err := WriterInfo(dir)
	return w.Alive, w.PID, err
}

// Writer is what WriterInfo finds of a log's writer.
type Writer struct {
	Alive bool
	PID   int // from LOCK; 0 if it does not say, or was removed
	// From is the first segment the live writer appends to, from LOCK
	// (Lock.Appending); 0 if LOCK does not say yet. It is read from the
	// LOCK file the writer holds, after the lock was found held: a
	// segment below it gets no frame from a writer alive then or later,
	// as each numbers on from the newest segment present (FORMAT.md
	// section 9).
	From uint64
}

// WriterInfo is WriterAlive, with the first segment the writer appends
// to. dir is read as CleanName reads it: the directory is opened by the
// name LOCK is joined to.
func WriterInfo(dir string) (Writer, error) {
	return WriterInfoContext(context.Background(), dir)
}

// WriterInfoContext is WriterInfo whose wait for a lease's break on LOCK
// ends when ctx is done (OpenNoFollowContext).
func WriterInfoContext(ctx context.Context, dir string) (Writer, error) {
	dir = CleanName(dir)
	p := filepath.Join(dir, LockName)
	f, err := openLockFile(ctx, p, os.O_RDONLY)
	// A LOCK this user may not open (a reader in the log's group, LOCK
	// made under umask 077) is asked no more than a missing one: the
	// directory lock says whether a writer is alive, not its pid.
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrPermission) {
		return Writer{}, err
	}
	if err == nil {
		defer f.Close()
		lk := lockRange(unix.F_WRLCK)
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
			return Writer{}, fmt.Errorf("query lock %s: %w", p, err)
		}
		if lk.Type != unix.F_UNLCK {
			// Read through f, the file found locked: LOCK replaced
			// since is not the writer's.
			w := readLock(f)
			w.Alive = true
			return w, nil
		}
	}
	// LOCK missing, unlocked or not ours to open: a writer whose LOCK file
	// was removed still holds the directory.
	d, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Writer{}, nil
		}
		return Writer{}, fmt.Errorf("query lock of %s: %w", dir, err)
	}
	defer d.Close()
	held, err := dirLocked(d)
	return Writer{Alive: held}, err
}

// openLockFile opens the LOCK file, which must be a regular file: with
// O_NONBLOCK a FIFO put there fails here instead of blocking the open (and
// every verify and tail of the log) until something writes to it; a
// lease's break is waited for (WaitLease).
func openLockFile(ctx context.Context, p string, flag int) (*os.File, error) {
	var f *os.File
	err := WaitLease(ctx, func() (err error) {
		f, err = os.OpenFile(p, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o640)
		return err
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, lockOpenError(err)
	}
	return regularLockFile(f)
}

// lockOpenError is err, a *PathError from opening LOCK, in words. A
// symbolic link is refused (O_NOFOLLOW), neither followed nor replaced:
// followed, it would have the writer truncate and lock whatever file it
// names; replaced, a link someone put there on purpose would be lost.
func lockOpenError(err error) error {
	var pe *os.PathError
	if errors.Is(err, unix.ELOOP) && errors.As(err, &pe) {
		return fmt.Errorf("lock file %s: is a symbolic link, which is never followed (remove it): %w", pe.Path, unix.ELOOP)
	}
	return fmt.Errorf("open lock file: %w", err)
}

// regularLockFile returns f, or closes it and fails if it is not a
// regular file (O_NONBLOCK opened a FIFO planted as LOCK without waiting).
func regularLockFile(f *os.File) (*os.File, error) {
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = errors.New("not a regular file")
		}
		return nil, fmt.Errorf("lock file %s: %w", f.Name(), err)
	}
	return f, nil
}

// readLock parses LOCK's content (lockContent), each line only if whole:
// a value it cannot parse is 0. A LOCK written by hand is believed, as
// its lock is: it is the writer's file.
func readLock(f *os.File) Writer {
	var b [64]byte
	n, _ := f.ReadAt(b[:], 0)
	var w Writer
	pid, rest, _ := strings.Cut(string(b[:n]), "\n")
	w.PID, _ = strconv.Atoi(strings.TrimSpace(pid))
	if line, _, ok := strings.Cut(rest, "\n"); ok && strings.HasPrefix(line, "from ") {
		w.From, _ = strconv.ParseUint(line[len("from "):], 10, 64)
	}
	return w
}
