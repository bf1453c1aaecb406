package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// Cursor files (tail --cursor-file) hold the last record printed,
// "SEQ:OFFSET CREATED\n": its position, and the creation time of its
// segment (RFC 3339, from the segment's header) so that a cursor meeting
// another log, or this log deleted and begun again, is refused instead of
// silently skipping that log's records up to the old position. Files
// without CREATED (older ones) are still read. They are replaced
// atomically, so a crash leaves the old cursor or the new one, never a
// torn one.

type cursor struct {
	pos     segment.Position
	created int64 // unix ns of segment pos.Seq's creation; 0 if unknown
}

// readCursor returns the cursor stored in path; ok is false when the
// file does not exist or is empty (no run has printed anything yet).
// ctx ends the wait for a lease's break on it.
func readCursor(ctx context.Context, path string) (c cursor, ok bool, err error) {
	b, err := readSmallFile(ctx, path, maxCursorFile)
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, segment.FileError(path, "cursor file", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return c, false, nil
	}
	c, err = parseCursor(string(b))
	if err != nil {
		return c, false, segment.FileError(path, "cursor file", err)
	}
	return c, true, nil
}

// maxCursorFile bounds what is read of a cursor file: one line.
const maxCursorFile = 4 << 10

// readSmallFile reads the regular file at path, of at most max bytes: a
// FIFO there must not block the read (O_NONBLOCK, then the type check),
// nor a link to /dev/zero fill memory. A lease's break is waited for as a
// segment's is, until ctx is done (segment.OpenNonBlocking).
func readSmallFile(ctx context.Context, path string, max int64) ([]byte, error) {
	f, err := segment.OpenNonBlocking(ctx, path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, segment.NotRegularFile(path, st.Mode())
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a cursor file", path, max)
	}
	return b, nil
}

// parseCursor parses a cursor file's content.
func parseCursor(s string) (c cursor, err error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return c, fmt.Errorf("want \"SEQ:OFFSET CREATED\", got %q", strings.TrimSpace(s))
	}
	if c.pos, err = segment.ParsePosition(fields[0]); err != nil {
		return cursor{}, err
	}
	// No run stores segment 0 (sequences start at 1); taken as read, it
	// passed for a segment retention removed, with a warning saying so.
	if c.pos.Seq == 0 {
		return cursor{}, fmt.Errorf("position %q: segment 0: sequence numbers start at 1", fields[0])
	}
	// tail stores a record's position: one in the header, or off the
	// frames' alignment, is a damaged file, and read as "after it" it
	// could pass the record it is inside silently.
	if c.pos.Offset < segment.HeaderSize || c.pos.Offset%segment.Alignment != 0 {
		return cursor{}, fmt.Errorf("position %q: not a record's position (records start at offset %d, at multiples of %d)",
			fields[0], segment.HeaderSize, segment.Alignment)
	}
	if len(fields) == 2 {
		t, err := time.Parse(time.RFC3339Nano, fields[1])
		if err != nil || t.UnixNano() == 0 {
			return cursor{}, fmt.Errorf("segment creation time %q: want RFC 3339", fields[1])
		}
		// UnixNano wraps outside these years; no segment is created there.
		if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
			return cursor{}, fmt.Errorf("segment creation time %q: not between 1678 and 2262", fields[1])
		}
		c.created = t.UnixNano()
	}
	return c, nil
}

func (c cursor) String() string {
	if c.created == 0 {
		return c.pos.String()
	}
	return c.pos.String() + " " + time.Unix(0, c.created).UTC().Format(time.RFC3339Nano)
}

// checkCursor refuses a cursor that cannot belong to the log in dir: its
// segment is past the log's newest, or is there but was created at
// another time. A cursor whose segment was deleted (retention) passes,
// with a warning (behind) when that may have lost records. A directory
// that cannot be listed, or a segment whose header cannot be read, is
// left to the reader to report. ctx ends a wait for a lease's break on
// the segment: its error is returned then, for tail to stop.
func checkCursor(ctx context.Context, dir, path string, c cursor) (behind string, err error) {
	fix := fmt.Sprintf("another log, or this one begun again? Remove %s to read %s from its start", path, dir)
	if isFile(dir) {
		// One segment file: its creation time must agree too, or the
		// cursor of another log's segment of that number would skip this
		// one's records up to the old offset.
		if c.created == 0 {
			return "", nil
		}
		h, err := segment.ReadHeaderContext(ctx, dir)
		if cancel.Ended(ctx, err) {
			return "", err
		}
		if err != nil || h.Seq != c.pos.Seq || h.Created == c.created {
			return "", nil
		}
		return "", fmt.Errorf("cursor file %s is at %s, in a segment created %s, but %s (segment %d) was created %s: %s",
			path, c.pos, time.Unix(0, c.created).UTC().Format(time.RFC3339Nano), dir, h.Seq,
			time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano), fix)
	}
	l, err := segment.List(dir)
	if err != nil {
		return "", nil
	}
	last, ok := l.Last()
	if !ok {
		return "", fmt.Errorf("cursor file %s is at %s, but %s holds no segment: %s", path, c.pos, dir, fix)
	}
	if c.pos.Seq > last.Seq {
		return "", fmt.Errorf("cursor file %s is at %s, past the newest segment of %s (%d): %s", path, c.pos, dir, last.Seq, fix)
	}
	if first := l.Segments[0].Seq; c.pos.Seq < first {
		return removedBehind(path, c.pos, first), nil
	}
	if c.created == 0 {
		return "", nil
	}
	h, err := segmentHeader(ctx, l, c.pos.Seq)
	if cancel.Ended(ctx, err) {
		return "", err
	}
	if err != nil || h.Created == c.created {
		return "", nil
	}
	return "", fmt.Errorf("cursor file %s is at %s, in a segment created %s, but segment %d of %s was created %s: %s",
		path, c.pos, time.Unix(0, c.created).UTC().Format(time.RFC3339Nano), c.pos.Seq, dir,
		time.Unix(0, h.Created).UTC().Format(time.RFC3339Nano), fix)
}

// removedBehind is the warning for a cursor at pos whose segment is gone,
// first being the oldest segment there now: retention removed it between
// runs (or the log's oldest were removed by hand), and the records after
// pos in it, and those of any segment between, were never delivered.
// Within a run tail warns of every such removal (DamageRemoved); a
// consumer that lags behind retention is as close to losing records.
// Whether pos was its segment's last record is not known once the
// segment is gone, so that one is "may".
func removedBehind(path string, pos segment.Position, first uint64) string {
	if first == pos.Seq+1 {
		return fmt.Sprintf("segment %d, where cursor file %s is (%s), was removed since the cursor was stored: any records after %s in it were not read; resuming at segment %d",
			pos.Seq, path, pos, pos, first)
	}
	between := fmt.Sprintf("segment %d", pos.Seq+1)
	if first-1 > pos.Seq+1 {
		between = fmt.Sprintf("segments %d to %d", pos.Seq+1, first-1)
	}
	return fmt.Sprintf("segments %d to %d were removed since cursor file %s was stored (at %s): any records after %s in segment %d and those of %s were not read; resuming at segment %d",
		pos.Seq, first-1, path, pos, pos, pos.Seq, between, first)
}

// segmentHeader reads the header of segment seq of the listing, from its
// archive if compress-finished replaced it since the listing; ctx ends a
// wait for a lease's break.
func segmentHeader(ctx context.Context, l segment.Listing, seq uint64) (segment.Header, error) {
	_, h, err := segmentHeaderAt(ctx, l, seq)
	return h, err
}

// segmentHeaderAt is segmentHeader, with the file it read the header from.
func segmentHeaderAt(ctx context.Context, l segment.Listing, seq uint64) (string, segment.Header, error) {
	i, found := slices.BinarySearchFunc(l.Segments, seq, func(e segment.Entry, s uint64) int { return cmp.Compare(e.Seq, s) })
	if !found {
		return "", segment.Header{}, os.ErrNotExist
	}
	path := l.Segments[i].Path
	h, err := segment.ReadHeaderContext(ctx, path)
	if a, ok := segment.ArchivedInstead(path, err); ok {
		path = a
		h, err = segment.ReadHeaderContext(ctx, a)
	}
	if err == nil && h.Seq != seq {
		err = fmt.Errorf("%s: header says segment %d", path, h.Seq)
	}
	return path, h, err
}

// cursorAt is the cursor for the record at pos of the log in dir: with
// its segment's creation time when the header can be read.
func cursorAt(dir string, pos segment.Position) cursor {
	c := cursor{pos: pos}
	if isFile(dir) { // one segment file was read
		if h, err := segment.ReadHeader(dir); err == nil && h.Seq == pos.Seq {
			c.created = h.Created
		}
	} else if l, err := segment.List(dir); err == nil {
		// Background: the cursor is written after a signal too, and one
		// without the time is checked less on the next run. The reader
		// has just read this header: a lease on it now is unlikely.
		if h, err := segmentHeader(context.Background(), l, pos.Seq); err == nil {
			c.created = h.Created
		}
	}
	return c
}

// writeCursor replaces path with pos: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced.
func writeCursor(path string, c cursor) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return storeError(path, "", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return storeError(path, "", err)
	}
	if _, err := tmp.WriteString(c.String() + "\n"); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		// os.Rename refuses a directory at path as EEXIST, "file exists",
		// which does not say what is in the way.
		if st, serr := os.Lstat(path); serr == nil && st.IsDir() {
			err = segment.NotRegularFile(path, st.Mode())
		}
		return storeError(path, "", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return storeError(path, "its directory", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return storeError(path, "fsync its directory", err)
	}
	return nil
}

// checkCursorDir fails unless a cursor can be stored at path: its
// directory is there and writable. tail checks it before it prints
// anything: found only when the cursor is stored, the records would
// have been printed and their position lost, and the next run would
// print them again.
func checkCursorDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case err != nil:
	case !st.IsDir():
		err = unix.ENOTDIR
	default:
		err = unix.Access(dir, unix.W_OK|unix.X_OK)
	}
	return storeError(path, "its directory", err)
}

// checkCursorName refuses a cursor file that would take the name of one
// of the log's own files in the log directory of dir (dir itself, or the
// directory of a segment file given instead): a segment, an archive, one
// of their temporary files, or LOCK. Such a name made tail store the
// cursor as a segment the writer had yet to reach: the next writer
// recovered it as a damaged segment and went on after it, and verify
// reported a gap up to it and a torn header for ever (exit 1); at an
// existing name it is refused anyway (not a cursor file).
func checkCursorName(dir, path string) error {
	name := strings.TrimSuffix(filepath.Base(path), segment.TempExt)
	if _, _, ok := segment.ParseName(name); !ok && name != segment.LockName {
		return nil
	}
	logDir := dir
	if isFile(dir) {
		logDir = filepath.Dir(dir)
	}
	ld, err := os.Stat(logDir)
	if err != nil {
		return nil // the reader reports it
	}
	cd, err := os.Stat(filepath.Dir(path))
	if err != nil || !os.SameFile(ld, cd) {
		return nil
	}
	return fmt.Errorf("cursor file %s: %s is the name of one of the log's own files in %s: keep the cursor file under another name, outside the log directory",
		path, filepath.Base(path), filepath.Clean(logDir))
}

// storeError is err, from storing the cursor file at path (step: what of
// it failed, "" for the file itself), naming path alone: the temporary
// file's name, or the directory's, would only puzzle its reader.
func storeError(path, step string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	what := "cannot store the cursor file"
	if step != "" {
		what += ": " + step
	}
	return segment.FileError(path, what, err)
}
