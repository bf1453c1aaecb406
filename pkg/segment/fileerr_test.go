package segment

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// FileError names the file once, first, whatever shape the cause has,
// and leaves errors.Is and errors.As as they were. An *fs.PathError used
// to be wrapped whole ("PATH: cannot open segment: open PATH: ...").
func TestFileErrorNamesThePathOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName(1))
	_, openErr := os.Open(p)
	var pe *fs.PathError
	if !errors.As(openErr, &pe) {
		t.Fatalf("os.Open: %v, not a *fs.PathError", openErr)
	}
	corrupt := &CorruptError{Path: p, Offset: 8, Reason: "bad version"}
	other := errors.New("zstd decoder: out of memory")
	// WaitLease's shape: the open's PathError with what ended the wait
	// after it.
	leaseErr := fmt.Errorf("%w: stopped after waiting 3ms for another process's lease on the file to be given up: %w",
		&fs.PathError{Op: "open", Path: p, Err: syscall.EWOULDBLOCK}, context.Canceled)
	// Text before the PathError is another wrapper's word: kept whole.
	before := fmt.Errorf("retry: %w", &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission})
	cases := []struct {
		err  error
		want string
	}{
		{openErr, p + ": cannot open segment: no such file or directory"},
		{corrupt, p + ": cannot open segment: offset 8: bad version"},
		{other, p + ": cannot open segment: zstd decoder: out of memory"},
		{leaseErr, p + ": cannot open segment: resource temporarily unavailable: stopped after waiting 3ms for another process's lease on the file to be given up: context canceled"},
		{before, p + ": cannot open segment: retry: open " + p + ": permission denied"},
		// A PathError for another file keeps its own path.
		{&fs.PathError{Op: "open", Path: "/elsewhere", Err: fs.ErrPermission}, p + ": cannot open segment: open /elsewhere: permission denied"},
	}
	for _, c := range cases {
		err := FileError(p, "cannot open segment", c.err)
		if err.Error() != c.want {
			t.Errorf("FileError(%v):\n got %q\nwant %q", c.err, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("FileError(%v) does not wrap it", c.err)
		}
	}
	err := FileError(p, "", openErr)
	if err.Error() != p+": no such file or directory" || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
		t.Errorf("FileError without what: %q, or not fs.ErrNotExist / *fs.PathError", err)
	}
	if FileError(p, "x", nil) != nil {
		t.Error("FileError of nil is not nil")
	}
}

// OpError names the file once, after the operation, in the shapes a
// step's error comes in: os's own *fs.PathError on the file ("sync PATH:
// ..."), a bare errno (an FS that does not name it), an error of ours
// naming the file first. It used to be "fsync PATH: sync PATH: ...".
func TestOpErrorNamesThePathOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName(1))
	cases := []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "sync", Path: p, Err: syscall.EIO}, "fsync " + p + ": input/output error"},
		{syscall.EIO, "fsync " + p + ": input/output error"},
		{fmt.Errorf("%s: is a named pipe (FIFO), not a regular file", p), "fsync " + p + ": is a named pipe (FIFO), not a regular file"},
		{&fs.PathError{Op: "open", Path: "/elsewhere", Err: syscall.EIO}, "fsync " + p + ": open /elsewhere: input/output error"},
	}
	for _, c := range cases {
		err := OpError("fsync", p, c.err)
		if err.Error() != c.want {
			t.Errorf("OpError(%v):\n got %q\nwant %q", c.err, err, c.want)
		}
		if !errors.Is(err, c.err) {
			t.Errorf("OpError(%v) does not wrap it", c.err)
		}
	}
	if OpError("fsync", p, nil) != nil {
		t.Error("OpError of nil is not nil")
	}
}
