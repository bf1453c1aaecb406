package main

// auditseg write DIR: stdin to records.
//
// Exit codes: 0 all input committed (also after SIGINT/SIGTERM/SIGHUP, which stop
// reading and commit every complete record read, or, while the log is
// being opened, end that before anything is read); 1 an error while writing (records
// committed before it stay readable), or a second signal left records read
// and not committed; 2 bad flags, or the log could not be
// opened (locked by another writer, missing permissions), or standard
// input is a directory.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newWriteCmd) }

type writeFlags struct {
	segmentSize, maxRecord string
	sync                   string
	syncInterval           time.Duration
	delim, framing         string
	quiet                  bool
}

func newWriteCmd() *cobra.Command {
	var f writeFlags
	c := &cobra.Command{
		Use:   "write DIR",
		Short: "Append stdin to the log in DIR, one record per line (or NUL / length-prefixed)",
		Long: `Reads stdin to EOF and appends each record to the log in DIR (created if
missing). With --delim newline (default) every line is a record, without
its newline; a last line without a newline is a record too, and empty lines
are empty records. --delim nul splits on NUL bytes (a last record without
its NUL is a record too). --framing u32be reads
binary records, each prefixed by its length as a 4-byte big-endian integer.

SIGINT, SIGTERM or SIGHUP stops reading: every complete record read is committed,
the segment sealed, and the command exits 0. One while the log is being
opened (recovery after a crash, a wait for another process's file lease)
ends that, reading nothing, and the command exits 0. An incomplete last record (a
line without its newline yet) is reported and not committed. A second
signal stops committing: the bytes read and not committed are reported
with the input offset up to which everything was, and the exit code is 1.`,
		Args: wantArgs("one log directory", 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWrite(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.segmentSize, "segment-size", "64MiB", "size of each segment file (bytes, or with KiB/MiB/GiB): 64KiB to 1GiB, a multiple of 8")
	fl.StringVar(&f.maxRecord, "max-record", "", "largest record accepted (default segment-size/8 - 24)")
	fl.StringVar(&f.sync, "sync", "interval", "durability: none, interval or always")
	fl.DurationVar(&f.syncInterval, "sync-interval", time.Second, "flush period for --sync interval (at least 1ms)")
	fl.StringVar(&f.delim, "delim", "newline", "record delimiter: newline or nul")
	fl.StringVar(&f.framing, "framing", "", "binary framing instead of a delimiter: u32be")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "errors only on stderr: no summary, notices or warnings")
	return c
}

func (f writeFlags) options() (writer.Options, error) {
	var o writer.Options
	var err error
	// Both sizes are checked here, not left to writer.Open, whose error
	// names the directory and the option rather than the flag. (And the
	// library reads 0 as its default: a user who typed 0 did not mean it.)
	if o.SegmentSize, err = parseSize(f.segmentSize); err != nil {
		return o, fmt.Errorf("--segment-size: %w", err)
	}
	if segment.ValidSize(o.SegmentSize) != nil {
		return o, fmt.Errorf("--segment-size %s: want %dKiB to %dGiB, a multiple of %d", f.segmentSize,
			segment.MinSegmentSize>>10, segment.MaxSegmentSize>>30, segment.Alignment)
	}
	if f.maxRecord != "" {
		if o.MaxRecordSize, err = parseSize(f.maxRecord); err != nil {
			return o, fmt.Errorf("--max-record: %w", err)
		}
		if top := segment.MaxPayload(o.SegmentSize); o.MaxRecordSize < 1 || o.MaxRecordSize > top {
			more := ""
			if o.SegmentSize < segment.MaxSegmentSize {
				more = " (a larger --segment-size allows more)"
			}
			return o, fmt.Errorf("--max-record %s: want 1 to %d bytes for --segment-size %s%s", f.maxRecord, top, f.segmentSize, more)
		}
	}
	if o.Sync, err = writer.ParseSyncMode(f.sync); err != nil {
		return o, fmt.Errorf("--sync: %w", err)
	}
	if f.syncInterval < writer.MinSyncInterval {
		return o, fmt.Errorf("--sync-interval %v: want at least %v (--sync always makes each record durable before it is acknowledged)", f.syncInterval, writer.MinSyncInterval)
	}
	o.SyncInterval = f.syncInterval
	return o, nil
}

func runWrite(cmd *cobra.Command, dir string, f writeFlags) error {
	if f.maxRecord == "" && cmd.Flags().Changed("max-record") {
		return withCode(exitUsage, errors.New("--max-record: empty size (leave the flag out for the default, segment-size/8 - 24)"))
	}
	opts, err := f.options()
	if err != nil {
		return withCode(exitUsage, err)
	}
	if f.framing != "" && cmd.Flags().Changed("delim") {
		return withCode(exitUsage, errors.New("--delim and --framing: give one (a framed record has no delimiter)"))
	}
	maxRec := opts.MaxRecordSize
	if maxRec == 0 {
		maxRec = segment.DefaultMaxRecord(opts.SegmentSize)
	}
	split, err := newSplitter(f, maxRec, opts.SegmentSize)
	if err != nil {
		return withCode(exitUsage, err)
	}
	// Before Open, so that a mistyped redirection (`< dir`) makes no log.
	if in, ok := cmd.InOrStdin().(*os.File); ok {
		if st, err := in.Stat(); err == nil && st.IsDir() {
			return withCode(exitUsage, errors.New("standard input is a directory: want the records (a file or a pipe)"))
		}
	}
	// Before Open, which can take a while (recovery, the first segment's
	// fsyncs): a signal meanwhile must end the command cleanly too.
	// SIGHUP too: a closed terminal or SSH session sends it, and left to
	// its default it killed the command with the blocks read from stdin
	// and not yet committed, whose bytes have left the pipe. Not one
	// ignored from the start (nohup): stopSignals.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, stopSignals()...)
	defer signal.Stop(sigs)
	// What the writer reports on its own (a segment recovery left as it
	// was, a full disk it retries on) reaches the operator, not only a
	// later verify. --quiet keeps errors only.
	lvl := slog.LevelInfo
	if f.quiet {
		lvl = slog.LevelError
	}
	opts.Logger = newCLILogger(cmd.ErrOrStderr(), "auditseg write: ", lvl)
	// Open's waits for another process's lease on LOCK or a segment (46 s
	// by default) end with a signal; sigs still gets it, for a signal
	// that lands too late for Open to see.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	w, err := writer.OpenContext(ctx, dir, opts)
	stop()
	if cancel.Ended(ctx, err) {
		// Stopped as a signal stops write: everything read (nothing) is
		// committed.
		if !f.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: interrupted while opening the log, nothing read or committed: %v\n", err)
		}
		return nil
	}
	if err != nil {
		return withCode(exitUsage, err)
	}
	return appendInput(cmd, w, opts, f, split, maxRec, sigs)
}

// appendInput appends stdin to the log w, opened with opts, closes it and
// reports: all that write does with the log once it is open.
func appendInput(cmd *cobra.Command, w *writer.Writer, opts writer.Options, f writeFlags, split splitter, maxRec int64, sigs <-chan os.Signal) error {
	start := time.Now()
	st := writeStats{}
	// With --sync always every record waits for the disk, ~1000 a second:
	// 1 MiB blocks would hold a first signal's drain for tens of seconds
	// (and gain nothing), so reads are a page.
	size := blockSize
	if opts.Sync == writer.SyncAlways {
		size = 4 << 10
	}
	need := recordNeed(f, maxRec)
	in := newBlockReader(cmd.InOrStdin(), need, size)
	var notice io.Writer
	if !f.quiet {
		notice = cmd.ErrOrStderr()
	}
	werr := pump(in, newFramer(split, maxRec, opts.SegmentSize, need), w, &st, sigs, notice)
	in.stop()
	cerr := w.Close()
	if werr == nil {
		werr = cerr
	}
	if !f.quiet {
		el := time.Since(start)
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: %s, %s, %s, %s, %.0f records/s\n",
			plural(st.records, "record"), humanBytes(st.bytes), plural(st.segments(), "segment"), el.Round(time.Millisecond), float64(st.records)/max(el.Seconds(), 1e-9))
	}
	// Records lost to a second signal are the exit error, said once; only
	// a write error, which takes the exit error, has them on a line of
	// their own.
	var lost error
	switch {
	case st.aborted:
		lost = fmt.Errorf("interrupted twice: input committed up to offset %d; %d bytes read after it were not committed", st.inOff, st.dropped)
		if werr != nil || st.dropped == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: %v\n", lost)
		}
	case st.interrupted && st.dropped > 0:
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: interrupted: input committed up to offset %d; the %d bytes after it, an incomplete record, were not\n", st.inOff, st.dropped)
	case st.interrupted && !f.quiet:
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: interrupted: input committed up to offset %d, every complete record read\n", st.inOff)
	}
	if werr != nil {
		return withCode(exitFailure, werr)
	}
	if st.aborted && st.dropped > 0 {
		return withCode(exitFailure, lost)
	}
	return nil
}

type writeStats struct {
	records, bytes    int64
	inOff             int64 // input bytes consumed by committed records
	dropped           int64 // bytes read but not committed when a signal stopped the run
	interrupted       bool  // a signal stopped reading
	aborted           bool  // a second signal stopped committing what was read
	firstSeq, lastSeq uint64
}

func (s *writeStats) segments() uint64 {
	if s.records == 0 {
		return 0
	}
	return s.lastSeq - s.firstSeq + 1
}

// newCLILogger logs to w as lines "PREFIX level=... msg=... key=value",
// without the time (the terminal or journal adds its own).
func newCLILogger(w io.Writer, prefix string, lvl slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(prefixWriter{w, prefix}, &slog.HandlerOptions{
		Level: lvl,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// prefixWriter writes prefix before every Write: slog's text handler
// writes each record in one call. Prefix and record go in one write, so a
// line the command prints meanwhile (a signal's notice) cannot land
// between them.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(p.prefix)+len(b))
	if _, err := p.w.Write(append(append(line, p.prefix...), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
