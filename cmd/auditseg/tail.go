package main

// auditseg tail DIR: the last records of a log, a replay from a position or
// a time, or a live follow across segment rotations.
//
// Exit codes:
//
//	0  the records asked for were printed (none is fine). Also when a
//	   follow, or a long replay, is stopped by SIGINT, SIGTERM or SIGHUP: output is
//	   flushed and the cursor file written first. Also when segments were
//	   removed (retention, oldest first) while tail read the log, before
//	   it read them: each run of them is named in a warning, their
//	   records were not printed, and the cursor file moves past them, as
//	   no later run can read them either. One missing while the segment
//	   before it is still there is damage (1), listed or not.
//	1  the log is damaged: torn frames, unusable or missing segments were
//	   reported on stderr (file and offset) and skipped, and every readable
//	   record was printed. What a dead writer left unfinished (reserved
//	   frames, zero gaps, an unfinished segment) is printed as a warning
//	   and does not change the exit code: no committed record is lost.
//	2  bad flags or arguments, or an I/O error: the log cannot be read (a
//	   segment that cannot be opened or read is reported, skipped, and
//	   every readable record still printed; but after a record that
//	   changed while tail printed it, the rest of its segment is skipped,
//	   and the closing line counts those of its records skipped that
//	   were still readable, if any, instead), the
//	   cursor file cannot be read or written or belongs to another log,
//	   or writing the output failed, or was given up after a signal (a
//	   consumer not reading: the cursor is stored at the last record of
//	   the last write taken whole).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newTailCmd) }

type tailFlags struct {
	lines, from, since   string
	follow               bool
	cursorFile           string
	output, delim, frame string
}

func newTailCmd() *cobra.Command {
	var f tailFlags
	c := &cobra.Command{
		Use:   "tail DIR",
		Short: "Print the last records of a log, replay it, or follow it live",
		Long: `Prints records of the log in DIR (or of one segment file) in position order:
by default the last 10, one per line.

  -n N          the last N records (committed when tail started, -f aside);
                -n +K from the K-th record (-n +1 replays
                everything, byte for byte what 'auditseg write' read, except
                that a last line without a newline comes back with one)
  --from POS    from the first record at or after position SEQ:OFFSET
                (SEQ:0: the start of segment SEQ; an offset past that
                segment's record area, in its footer or past its end, names
                no record and is refused; with -f, one past the last record
                warns that the records appended before it are not printed)
  --since TIME  records stamped at or after TIME: RFC 3339 with its zone
                (2024-05-01T12:00:00Z, 2024-05-01 12:00:00+02:00; T or a
                space, Z or an offset, in either case) or a duration back
                from now (15m)
  -f            keep printing records as they are committed, across segment
                rotations, until interrupted (SIGINT/SIGTERM/SIGHUP); of one
                segment file, until that file is sealed
  --cursor-file F
                if F holds a position, print the records after it (instead of
                -n/--from/--since); on exit store the last position printed in
                F, atomically, so that runs resume one after another (F's
                directory must exist and be writable: checked before
                anything is printed; a position in F that is not a
                record's, in a segment's header or footer, past its end or
                not 8-byte aligned, is refused; one past the last record
                of its segment is moved back to that record, with a
                warning, so the records written after it are read)

Output (-o raw, the default): each payload followed by a newline (--delim nul:
a NUL byte), or with --framing u32be prefixed by its length as a 4-byte
big-endian integer, the inverse of the same 'auditseg write' flags. -o json:
one object per line with position, segment, offset, time (RFC 3339 with
nanoseconds, UTC) and payload when it is valid UTF-8, else payload_base64.
Output is buffered and flushed whenever tail waits for records. After
SIGINT, SIGTERM or SIGHUP it is flushed; if the consumer takes nothing of
it for 5s (it is alive but not reading), or at a second signal, tail gives
the output up, stores the cursor at the end of its last write that was
taken whole (every record up to it reached the consumer) and
exits 2.

Damage is reported on stderr with its file and offset, skipped, and reading
goes on. Segments removed (retention, oldest first) while tail reads the
log, before it read them, are named in a warning, one line for each run of
them (their records were not printed), and reading goes on with the next
segment. A segment missing while the one before it is still there is
damage, even if tail had listed it. A cursor whose segment was removed
between runs resumes at the oldest segment, with a warning naming the
segments removed since it was stored; so does a --from in such a segment.

Exit codes: 0 success (also when interrupted, or when segments were removed
while they were read); 1 damage was reported and skipped (a dead writer's
unfinished frames are warnings only); 2 bad usage or an I/O error (an
unreadable segment is named and skipped).`,
		Args: wantArgs("one log directory or segment file", 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTail(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.lines, "lines", "n", "10", "last N records, or +K to start at the K-th")
	fl.StringVar(&f.from, "from", "", "start at position SEQ:OFFSET")
	fl.StringVar(&f.since, "since", "", "records at or after TIME (RFC 3339 with its zone, T or a space; or a duration back from now)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "wait for new records")
	fl.StringVar(&f.cursorFile, "cursor-file", "", "resume after the position in this file and store the last one printed")
	fl.StringVarP(&f.output, "output", "o", "raw", "output format: raw or json")
	fl.StringVar(&f.delim, "delim", "newline", "raw record delimiter: newline or nul")
	fl.StringVar(&f.frame, "framing", "", "raw binary framing instead of a delimiter: u32be")
	return c
}

// start turns -n/--from/--since (or the cursor) into reader options. ctx
// ends the wait for a lease's break on the cursor file.
func (f tailFlags) start(ctx context.Context, cmd *cobra.Command, dir string, now time.Time) (reader.Options, error) {
	set := 0
	for _, name := range []string{"lines", "from", "since"} {
		if cmd.Flags().Changed(name) {
			set++
		}
	}
	if set > 1 {
		return reader.Options{}, errors.New("-n, --from and --since choose where to start: give one")
	}
	if f.cursorFile == "" && cmd.Flags().Changed("cursor-file") {
		// An unset "$CURSOR": without this, every run replays from -n
		// and stores nothing, silently.
		return reader.Options{}, errors.New("--cursor-file: empty path: give the file to keep the position in")
	}
	// The flags are checked even when a cursor takes over: a mistake in
	// them must show on the first run, not only once the cursor is lost.
	opts, err := f.startFromFlags(cmd, now)
	var fromGone string // said only if --from, not a cursor, says where to start
	if err == nil && cmd.Flags().Changed("from") {
		err = checkFromArea(ctx, dir, f.from)
		pos, _ := segment.ParsePosition(f.from) // parsed already
		if err == nil && f.follow && f.cursorFile == "" {
			if w := followFromWarning(ctx, dir, pos); w != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "auditseg tail: warning: %s\n", w)
			}
		}
		fromGone = fromRemoved(dir, pos)
	}
	warnFromGone := func() {
		if fromGone != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "auditseg tail: warning: %s\n", fromGone)
		}
	}
	if err != nil {
		return opts, err
	}
	if f.cursorFile == "" {
		warnFromGone()
		return opts, nil
	}
	if err := checkCursorDir(f.cursorFile); err != nil {
		return opts, err
	}
	if err := checkCursorName(dir, f.cursorFile); err != nil {
		return opts, err
	}
	c, ok, err := readCursor(ctx, f.cursorFile)
	if err != nil || !ok {
		if err == nil {
			warnFromGone()
		}
		return opts, err
	}
	behind, err := checkCursor(ctx, dir, f.cursorFile, c)
	if err != nil {
		return opts, err
	}
	if behind != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg tail: warning: %s\n", behind)
		return reader.Options{Start: reader.After(c.pos)}, nil
	}
	if err := checkCursorArea(ctx, dir, f.cursorFile, c); err != nil {
		return opts, err
	}
	start, past, err := cursorStart(ctx, dir, f.cursorFile, c)
	if past != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg tail: warning: %s\n", past)
	}
	return reader.Options{Start: start}, err
}

// startFromFlags turns -n/--from/--since into reader options.
func (f tailFlags) startFromFlags(cmd *cobra.Command, now time.Time) (reader.Options, error) {
	var opts reader.Options
	switch {
	case cmd.Flags().Changed("from"):
		pos, err := segment.ParsePosition(f.from)
		if err != nil {
			return opts, fmt.Errorf("--from: %w", err)
		}
		opts.Start = reader.At(pos)
	case cmd.Flags().Changed("since"):
		t, err := parseSince(f.since, now)
		if err != nil {
			return opts, err
		}
		opts.Since = t
	default:
		st, err := parseLines(f.lines)
		if err != nil {
			return opts, err
		}
		opts.Start = st
	}
	return opts, nil
}

// parseLines parses -n: N for the last N, +K to start at the K-th record.
func parseLines(s string) (reader.Start, error) {
	k, plus := strings.CutPrefix(s, "+")
	if !plus {
		// -N is N, as tail(1) takes it (-n -5: the last 5).
		k = strings.TrimPrefix(k, "-")
	}
	n, err := strconv.ParseUint(k, 10, 64)
	if err != nil {
		return reader.Start{}, fmt.Errorf("-n %q: want a number of records N (or -N), or +K to start at the K-th", s)
	}
	if plus {
		return reader.Skip(max(n, 1) - 1), nil // +0 means +1, as in tail(1)
	}
	return reader.Last(n), nil
}

// parseSince parses --since: an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, goRFC3339(s)); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time with its zone "+
			"(2024-05-01T12:00:00Z, 2024-05-01 12:00:00+02:00, 2024-05-01t12:00:00.5z) or a duration back from now (15m)", s)
	}
	return now.Add(-d), nil
}

// goRFC3339 is the RFC 3339 time s in Go's layout: RFC 3339 allows a
// lowercase t and z, and a space for the t (its section 5.6 note; what
// date(1) and databases print), which time.Parse refuses.
func goRFC3339(s string) string {
	if len(s) <= len("2006-01-02") {
		return s
	}
	b := []byte(s)
	if b[10] == ' ' || b[10] == 't' {
		b[10] = 'T'
	}
	if b[len(b)-1] == 'z' {
		b[len(b)-1] = 'Z'
	}
	return string(b)
}

func runTail(cmd *cobra.Command, dir string, f tailFlags) error {
	// Read, listed and checked against the cursor as one directory.
	dir = segment.CleanName(dir)
	began := time.Now()
	// SIGHUP as SIGTERM: a closed terminal or SSH session sends it, and
	// left to its default it killed tail before the cursor was stored.
	// Not one ignored from the start (nohup): stopSignals. From the
	// start: the cursor file's open may wait for a lease's break.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	opts, err := f.start(ctx, cmd, dir, began)
	if errors.Is(err, context.Canceled) {
		// A signal, before anything was read; not one landing after a
		// usage error (exit 2 still).
		return nil
	}
	if err != nil {
		return withCode(exitUsage, err)
	}
	stderr := cmd.ErrOrStderr()
	done := make(chan struct{})
	defer close(done)
	stdout := newStallWriter(cmd.OutOrStdout(), stopSignals(), done, stallNotice(stderr, "tail"))
	out := bufio.NewWriterSize(stdout, 256<<10)
	pr, err := newPrinter(out, f)
	if err != nil {
		return withCode(exitUsage, err)
	}
	if o, ok := cmd.OutOrStdout().(*os.File); ok && f.follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		watchReaderGone(ctx, cancel, o)
	}

	rep := &tailReports{out: out, stderr: stderr}
	opts.Follow = f.follow
	// A follow stops at a segment its user may not open: the writer makes
	// every later one alike (in its own group, unless the directory is
	// set-group-ID), so a follow that skipped them would print nothing
	// more of the log, for ever, and never store its cursor.
	var r *reader.Reader
	denied := ""
	opts.OnDamage = func(d reader.Damage) {
		rep.damage(d)
		if f.follow && denied == "" && unreadableSegment(d) && errors.Is(d.Err, fs.ErrPermission) {
			denied = d.Path
			if r != nil {
				r.Close() // from OnDamage: stops the reader there
			}
		}
	}
	// One line however many: after compress-finished --keep-original
	// every sealed segment has both, and a line each would bury the
	// output's other warnings.
	var dups []string
	opts.OnDuplicate = func(original, archive string) {
		dups = append(dups, archive)
		if rep.archives == nil {
			rep.archives = map[string]string{}
		}
		rep.archives[original] = archive
	}
	var last segment.Position
	printed := false
	// The last record whose bytes all reached the kernel: where the cursor
	// goes when the output is given up (errOutputStalled) with a record in
	// flight, perhaps cut.
	var full segment.Position
	fullPrinted := false
	// Sealed segments are formatted on every core and written a few MiB
	// at a time, straight to the output: bufio would copy each buffer once
	// more for nothing.
	var bulkErr error
	opts.Bulk = &reader.Bulk{
		Append: pr.appendRecord,
		Write: func(p []byte, pos segment.Position) error {
			if err := out.Flush(); err != nil {
				bulkErr = err
				return err
			}
			if _, err := stdout.Write(p); err != nil {
				bulkErr = err
				return err
			}
			last, printed = pos, true
			full, fullPrinted = pos, true
			if err := ctx.Err(); err != nil {
				return err // a signal: stop as a sequential replay does
			}
			return nil
		},
	}
	r, err = reader.OpenContext(ctx, dir, opts)
	if err != nil {
		return withCode(exitUsage, err)
	}
	defer r.Close()
	if denied != "" {
		r.Close()
	}
	switch len(dups) {
	case 0:
	case 1:
		fmt.Fprintf(stderr, "auditseg tail: warning: %s: archive of a segment whose original is still there (compress-finished --keep-original, or a run interrupted or still running); reading the original\n", dups[0])
	default:
		fmt.Fprintf(stderr, "auditseg tail: warning: %d segments have an archive beside the original (%s ... %s: compress-finished --keep-original, or a run interrupted or still running); reading the originals\n", len(dups), dups[0], dups[len(dups)-1])
	}

	werr := func() error {
		n := 0
		var payload []byte
		var perr error
		for {
			for r.Next() {
				rec := r.Record()
				if rep.faulted.skip(&rec) {
					continue
				}
				if payload, perr = payloadCopy(payload, &rec); perr != nil {
					rep.changed(rec.Position.Seq, perr)
					continue
				}
				if err := pr.print(&rec); err != nil {
					return err
				}
				last, printed = rec.Position, true
				// A replay of millions of records still stops on a signal.
				if n++; n&4095 == 0 && ctx.Err() != nil {
					return nil
				}
			}
			if r.Err() != nil {
				return nil
			}
			if err := out.Flush(); err != nil {
				return err
			}
			full, fullPrinted = last, printed
			if r.Wait(ctx) != nil {
				return nil // the end (io.EOF), a signal, or r.Err()
			}
		}
	}()
	if err := out.Flush(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = bulkErr
	}
	stalled := errors.Is(werr, errOutputStalled)
	if stalled {
		last, printed = full, fullPrinted
	} else if werr != nil {
		return withCode(exitUsage, fmt.Errorf("write output: %w", werr))
	}
	switch {
	case printed && f.cursorFile != "" && !r.SameLog():
		// The position is in the log that was there; stamped with the
		// log there now it would let the next run skip that log's records.
		fmt.Fprintf(stderr, "auditseg tail: cursor file %s not updated: %s was removed or replaced, or its log begun again, while it was read\n", f.cursorFile, dir)
	case printed && f.cursorFile != "" && rep.unreadable > 0:
		// The cursor would pass the segments that could not be read, and
		// the next run would never deliver their records: better that it
		// delivers again what this one printed.
		fmt.Fprintf(stderr, "auditseg tail: cursor file %s not updated: %s could not be read; the next run starts from the stored position again\n",
			f.cursorFile, plural(rep.unreadable, "segment"))
	case printed && f.cursorFile != "":
		if err := writeCursor(f.cursorFile, cursorAt(dir, last)); err != nil {
			return withCode(exitUsage, err)
		}
	}
	// An empty log prints nothing, rightly; but so does a mistyped
	// directory. (A follower waits for a writer to start: no warning; an
	// output given up before a record was written whole printed some; and
	// segments that could not be read are why nothing was printed, which
	// the closing line says: the last record readable is not the log's.)
	if !printed && !f.follow && !stalled && rep.unreadable == 0 {
		l, err := segment.List(dir)
		if err == nil && len(l.Segments) == 0 {
			fmt.Fprintf(stderr, "auditseg tail: warning: %s holds no segment files\n", dir)
		} else if (err == nil || isFile(dir)) && cmd.Flags().Changed("from") {
			// A position past the end prints nothing, rightly; but so
			// does a mistyped one.
			fmt.Fprintf(stderr, "auditseg tail: warning: no record at or after %s; %s\n", f.from, lastRecordText(dir))
		} else if (err == nil || isFile(dir)) && opts.Since.After(began) {
			// A year mistyped (2062 for 2026) looks like a quiet log.
			fmt.Fprintf(stderr, "auditseg tail: warning: --since %s is in the future (now %s); %s\n",
				f.since, began.UTC().Format(time.RFC3339), lastRecordText(dir))
		}
	}
	if stalled {
		return withCode(exitUsage, stalledError(printed, last))
	}
	if denied != "" {
		fmt.Fprintf(stderr, "auditseg tail: stopped following %s at %s, which this user may not read (the writer makes the segments after it alike)\n", dir, denied)
	} else if err := r.Err(); err != nil && !cancel.Ended(ctx, err) {
		return withCode(exitUsage, err)
	}
	return rep.closing(dir)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// lastRecordText says where the last record of the log (or segment file)
// at dir is.
func lastRecordText(dir string) string {
	r, err := reader.Open(dir, reader.Options{Start: reader.Last(1)})
	if err != nil {
		return "the log cannot be read: " + err.Error()
	}
	defer r.Close()
	if r.Next() {
		return "the last record is at " + r.Record().Position.String()
	}
	return "the log holds no record"
}

// payloadCopy copies rec's payload into buf and points rec at the copy.
// The payload is in the segment's mapping, which shows the file as it is
// now: truncated since the reader checked the record (an operator, a
// damaged file system), its missing pages raise SIGBUS, which would kill
// tail, and a cut inside a page reads as zeros, which tail would print as
// the record. AppendPayload copies under the fault guard and checks the
// copy against the record's CRC, so neither a partly read nor an altered
// payload reaches the output. The bulk replay checks CRCs as it formats.
// The records read ahead after a failing one are beyond it, in pages
// gone too unless the file was restored meanwhile: tail skips them
// (changedSeg), and its closing line counts those still readable.
func payloadCopy(buf []byte, rec *reader.Record) ([]byte, error) {
	buf, err := rec.AppendPayload(buf[:0])
	if err != nil {
		return buf, notPrinted(err, rec.Position)
	}
	rec.Payload = buf
	return buf, nil
}
