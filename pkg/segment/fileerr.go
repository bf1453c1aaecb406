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

// OpError returns err, from op on the file at path, as "OP PATH: CAUSE",
// the shape of an *fs.PathError, for a step that reads as an action
// ("fsync directory DIR", "remove leftover PATH"): it names the file once
// as FileError does, whatever err says already (an *fs.PathError of its
// own on path, an FS's error that names it), where a plain "OP PATH: %w"
// read "fsync PATH: sync PATH: input/output error". errors.Is and As see
// err as FileError's result does; nil stays nil.
func OpError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &fileError{path: path, what: op, err: err, opFirst: true}
}

type fileError struct {
	path, what string
	err        error
	opFirst    bool
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
	if e.opFirst {
		return fmt.Sprintf("%s %s: %s", e.what, e.path, cause)
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
