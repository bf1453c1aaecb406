package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// outsideArea says where pos lies when its offset is past the record area
// of its segment in the log (or segment file) at dir: in the footer, or
// past the end of the file ("" when inside, or when the segment is not
// there or its header cannot be read, which the reader reports). The
// reader orders positions, so the first record at or after such a one is
// the next segment's: a mistyped --from, or a damaged cursor file, went
// on there silently, passing the rest of the segment. ctx ends a wait for
// a lease's break on the segment: its error is returned then.
func outsideArea(ctx context.Context, dir string, pos segment.Position) (string, error) {
	path, h, err := startSegmentHeader(ctx, dir, pos.Seq)
	if cancel.Ended(ctx, err) {
		return "", err
	}
	var where string
	switch limit := segment.RecordLimit(h.Size); {
	case err != nil || pos.Offset < limit:
		return "", nil
	case pos.Offset >= h.Size:
		where = "past the end of"
	default:
		where = "in the footer of"
	}
	return fmt.Sprintf("%s segment %d (%s, %d bytes): its records lie at offsets %d to %d",
		where, pos.Seq, path, h.Size, segment.HeaderSize, segment.RecordLimit(h.Size)-1), nil
}

// startSegmentHeader reads the header of segment seq of the log at dir,
// or of the segment file dir if its header says seq, and returns the file
// it was read from (its archive if compress-finished replaced it).
func startSegmentHeader(ctx context.Context, dir string, seq uint64) (string, segment.Header, error) {
	if !isFile(dir) {
		l, err := segment.List(dir)
		if err != nil {
			return "", segment.Header{}, err
		}
		return segmentHeaderAt(ctx, l, seq)
	}
	h, err := segment.ReadHeaderContext(ctx, dir)
	if err == nil && h.Seq != seq {
		err = fmt.Errorf("%s: header says segment %d", dir, h.Seq)
	}
	return dir, h, err
}

// checkFromArea refuses a --from position, parsed already, past its
// segment's record area.
func checkFromArea(ctx context.Context, dir, from string) error {
	pos, err := segment.ParsePosition(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	where, err := outsideArea(ctx, dir, pos)
	if err != nil || where == "" {
		return err
	}
	return fmt.Errorf("--from %s: %s", from, where)
}

// fromRemoved is the warning for a --from position whose segment is no
// longer in the log at dir, older than its oldest segment: retention
// removed it. The reader then starts at the oldest segment there, rightly
// (the first record at or after pos that the log holds), but the records
// from pos up to that segment are lost to the run, which said nothing of
// it where a cursor file at such a position is warned of (removedBehind).
// Empty when the segment is there, or for a single segment file.
func fromRemoved(dir string, pos segment.Position) string {
	if isFile(dir) || pos.Seq == 0 {
		return ""
	}
	l, err := segment.List(dir)
	if err != nil || len(l.Segments) == 0 || pos.Seq >= l.Segments[0].Seq {
		return ""
	}
	first := l.Segments[0].Seq
	gone := fmt.Sprintf("segment %d is no longer in %s (removed by retention?): its", pos.Seq, filepath.Clean(dir))
	if first-1 > pos.Seq {
		gone = fmt.Sprintf("segments %d to %d are no longer in %s (removed by retention?): their", pos.Seq, first-1, filepath.Clean(dir))
	}
	return fmt.Sprintf("--from %s: %s records from %s on were not read; starting at segment %d, the oldest there", pos, gone, pos, first)
}

// followFromWarning says what `tail -f --from pos` passes over when the
// log holds no record at or after pos yet: the records the writer
// appends to pos's segment before pos. Without -f, such a run prints
// nothing and says so at the end; with -f it waited, silent, and then
// printed only what landed after pos. Empty when something is at or after
// pos (in its segment or a later one: the writer has moved past it), or
// when pos is the start of its segment's records.
func followFromWarning(ctx context.Context, dir string, pos segment.Position) string {
	if pos.Offset <= segment.HeaderSize {
		return ""
	}
	r, err := reader.OpenContext(ctx, dir, reader.Options{Start: reader.At(pos)})
	if err != nil {
		return "" // the follow itself reports it
	}
	found := r.Next()
	r.Close()
	if found {
		return ""
	}
	return fmt.Sprintf("no record at or after %s yet (%s): records written to segment %d before offset %d will not be printed",
		pos, lastRecordText(dir), pos.Seq, pos.Offset)
}

// checkCursorArea refuses a cursor past its segment's record area: tail
// stores the position of a record, so the file was damaged or edited.
func checkCursorArea(ctx context.Context, dir, path string, c cursor) error {
	where, err := outsideArea(ctx, dir, c.pos)
	if err != nil || where == "" {
		return err
	}
	return fmt.Errorf("cursor file %s is at %s, %s; tail stores a record's position, so the file was damaged or edited: remove %s to read %s from its start",
		path, c.pos, where, path, filepath.Clean(dir))
}

// cursorStart is where a run resumes from cursor c of the file at path:
// after c, unless c lies past the last record of its segment. tail
// stores a record's position, so such a cursor is a file edited, or
// records a run printed that the log no longer holds (the machine went
// down before they were flushed). Taken as "after c", it passed over,
// silently and in every later run, the records the writer appended
// between that last record and c. Instead the file is moved back to that
// record at once, before anything is printed (a run that prints nothing
// would leave it past records still to come), and the warning returned;
// with no record in the segment to move it to, it is refused. Damage in
// the segment is left to the reader to report. ctx ends the reads: its
// error is returned then.
func cursorStart(ctx context.Context, dir, path string, c cursor) (reader.Start, string, error) {
	keep := reader.After(c.pos)
	// As the reader resumes: a walk to c, then the record there, if any.
	_, beyond, ok, err := lastBefore(ctx, dir, c.pos, c.pos.Offset)
	if err != nil || beyond || !ok {
		return keep, "", err
	}
	// Only now the segment from its start, for its last record.
	last, beyond, ok, err := lastBefore(ctx, dir, c.pos, 0)
	if err != nil || beyond || !ok {
		return keep, "", err
	}
	why := fmt.Sprintf("cursor file %s is at %s, past the last record of segment %d", path, c.pos, c.pos.Seq)
	const cause = "tail stores a record's position, so the file was edited, or records an earlier run printed are no longer in the log (lost with the machine before they were flushed)"
	if last.Seq == 0 {
		return keep, "", fmt.Errorf("%s, which holds no record: %s; remove %s and run tail --from %d:0 --cursor-file %s to resume at the segment's start",
			why, cause, path, c.pos.Seq, path)
	}
	if err := writeCursor(path, cursorAt(dir, last)); err != nil {
		return keep, "", err
	}
	return reader.After(last), fmt.Sprintf("%s (its last record is at %s): %s; %s now holds %s, and the records written after it are read",
		why, last, cause, path, last), nil
}

// lastBefore reads segment pos.Seq of the log at dir from offset from:
// last is its last record before pos (zero if none), beyond whether one
// at or after pos is there. ok is false when damage up to pos, or an
// error, makes the answer unsure; err is ctx's error when it ended the
// read.
func lastBefore(ctx context.Context, dir string, pos segment.Position, from int64) (last segment.Position, beyond, ok bool, err error) {
	damaged := false
	r, err := reader.OpenContext(ctx, dir, reader.Options{
		Start: reader.At(segment.Position{Seq: pos.Seq, Offset: from}),
		OnDamage: func(d reader.Damage) {
			if d.Seq <= pos.Seq && !d.Kind.CrashLeftover() {
				damaged = true
			}
		},
	})
	if err != nil {
		if cancel.Ended(ctx, err) {
			return last, false, false, err
		}
		return last, false, false, nil
	}
	defer r.Close()
	for r.Next() {
		p := r.Record().Position
		if p.Seq != pos.Seq {
			break
		}
		if p.Offset >= pos.Offset {
			return last, true, true, nil
		}
		last = p
	}
	if err := r.Err(); err != nil || damaged {
		if cancel.Ended(ctx, err) {
			return last, false, false, err
		}
		return last, false, false, nil
	}
	return last, false, true, nil
}
