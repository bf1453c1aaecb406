package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// FileError returns err as one line naming the file at path once, first:
// "PATH: WHAT: CAUSE" ("PATH: CAUSE" when what is empty). The errors met
// when a file is opened or read come in three shapes, and a plain
// "PATH: WHAT: %w" around them named the file twice or not first:
//
//   - an *fs.PathError, which puts the path after the operation ("open
//     PATH: permission denied"), alone or with more said after it: only
//     its cause and what follows are kept;
//   - one of ours that already starts with "PATH: " (a CorruptError, a
//     ChangedError, "PATH: not a regular file"): the prefix is dropped;
//   - anything else, kept whole.
//
// Only the message changes: the result wraps err itself, so errors.Is and
// errors.As find what they found in err (fs.ErrNotExist, the
// *fs.PathError, ErrCorrupt). nil stays nil.
func FileError(path, what string, err error) error {
	if err == nil {
		return nil
	}
	return &fileError{path: path, what: what, err: err}
}

type fileError struct {
	path, what string
	err        error
}

func (e *fileError) Error() string {
	cause := e.err.Error()
	var pe *fs.PathError
	// Only a PathError whose message starts err's (a wait for a lease's
	// break adds why it ended after it): anything a wrapper put before it
	// is kept whole.
	if errors.As(e.err, &pe) && pe.Path == e.path && pe.Err != nil && strings.HasPrefix(cause, pe.Error()) {
		cause = pe.Err.Error() + cause[len(pe.Error()):]
	} else {
		cause = strings.TrimPrefix(cause, e.path+": ")
	}
	if e.what == "" {
		return fmt.Sprintf("%s: %s", e.path, cause)
	}
	return fmt.Sprintf("%s: %s: %s", e.path, e.what, cause)
}

func (e *fileError) Unwrap() error { return e.err }

// readError is err, from a read of the file at path that failed at off,
// naming the file once, first, and the offset.
func readError(path string, off int64, err error) error {
	return FileError(path, fmt.Sprintf("read at offset %d", off), err)
}

// NotRegularFile is the error for the file at path that is not a regular
// file (mode, from Lstat or Stat): it says what the file is, so that a
// report of it reads neither as the file missing nor as a vague "not a
// regular file" one has to look up.
func NotRegularFile(path string, mode fs.FileMode) error {
	return fmt.Errorf("%s: is %s, not a regular file", path, fileKind(mode))
}

func fileKind(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}
