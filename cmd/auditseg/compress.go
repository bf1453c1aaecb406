package main

// auditseg compress-finished DIR: crash-safe, verified zstd archives of the
// sealed segments of a log (the protocol is in pkg/archive).
//
// Exit codes:
//
//	0  every eligible segment is archived (or there was nothing to do; a
//	   dry run only plans; segments a retention job removed meanwhile are
//	   skipped)
//	1  at least one segment failed (each is named on stderr; its original
//	   is untouched and the others were still processed), another
//	   compress-finished run holds DIR, or the run was interrupted by
//	   SIGINT/SIGTERM/SIGHUP (finished segments stay archived; run it
//	   again)
//	2  bad flags or arguments, DIR cannot be read, or the output cannot be
//	   written (or, after a stop signal, is not read for 5 s: stallWriter)

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/internal/names"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newCompressCmd) }

type compressFlags struct {
	level        string
	jobs         int
	minAge       time.Duration
	keep         int
	keepOriginal bool
	dryRun       bool
	output       string
}

func newCompressCmd() *cobra.Command {
	var f compressFlags
	c := &cobra.Command{
		Use:   "compress-finished DIR",
		Short: "Archive sealed segments as verified .seg.zst files, crash-safely",
		Long: `Compresses every sealed segment of the log in DIR that has no archive yet
into NAME.seg.zst, a standard zstd frame (zstd -d gives back the segment
file byte for byte). Readers, tail, verify and inspect read archives like
segments. The newest segment and unsealed ones are never touched.

Each archive is written to a temporary file, fsynced, read back from the
disk (direct I/O where the file system allows, so the page cache's copy
cannot stand in for the disk's), decompressed and compared with the
original, renamed into place and the directory fsynced; only then is the
original removed. A crash at any point leaves the
original or a verified archive, and the next run finishes the work.
A segment whose header or footer is damaged is left as it is with a
warning (auditseg verify says what is wrong); one that cannot be read at
all (permissions, an I/O error) is left as it is and counts as failed.
A segment removed by something else (a retention job) after the run
planned it is skipped, not failed, and its archive is not left behind
(see README.md for running retention beside compress-finished).

Exit codes: 0 all done; 1 a segment failed or could not be read (the
others are still done; its original stays), another run holds DIR, or
interrupted; 2 bad usage, DIR
unreadable, or the output could not be written (or was not read within 5s
of a stop signal, or by a second one).`,
		Args: wantArgs("one log directory", 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompress(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.level, "level", "default", "zstd level: 1-22 (mapped to the nearest the encoder has) or fastest, default, better, best")
	fl.IntVarP(&f.jobs, "jobs", "j", 0, "segments compressed in parallel (default: number of CPUs)")
	fl.DurationVar(&f.minAge, "min-age", 0, "skip segments sealed less than this long ago (e.g. 24h)")
	fl.IntVar(&f.keep, "keep", 0, "leave the newest N sealed segments uncompressed")
	fl.BoolVar(&f.keepOriginal, "keep-original", false, "keep each .seg beside its verified archive")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "print what would be done and change nothing")
	fl.StringVarP(&f.output, "output", "o", "text", "summary format: text or json")
	return c
}

// parseLevel accepts a numeric zstd level or a name of the encoder's levels.
func parseLevel(s string) (zstd.EncoderLevel, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 22 {
			return 0, fmt.Errorf("--level %d: zstd levels are 1 to 22", n)
		}
		return zstd.EncoderLevelFromZstd(n), nil
	}
	if ok, l := zstd.EncoderLevelFromString(s); ok {
		return l, nil
	}
	return 0, fmt.Errorf("--level %q: want 1-22, fastest, default, better or best", s)
}

func (f compressFlags) options() (archive.Options, error) {
	var o archive.Options
	var err error
	if o.Level, err = parseLevel(f.level); err != nil {
		return o, err
	}
	switch {
	case f.jobs < 0:
		// 0 is one per CPU, as for verify (archive.Options.Jobs).
		return o, fmt.Errorf("--jobs %d: want a positive number (or 0: one per CPU)", f.jobs)
	case f.keep < 0:
		return o, fmt.Errorf("--keep %d: want 0 or more", f.keep)
	case f.minAge < 0:
		return o, fmt.Errorf("--min-age %s: want 0 or more", f.minAge)
	case f.output != "text" && f.output != "json":
		return o, fmt.Errorf("--output %q: want text or json", f.output)
	}
	o.Jobs, o.MinAge, o.Keep = f.jobs, f.minAge, f.keep
	o.KeepOriginal, o.DryRun = f.keepOriginal, f.dryRun
	return o, nil
}

func runCompress(cmd *cobra.Command, dir string, f compressFlags) error {
	opts, err := f.options()
	if err != nil {
		return withCode(exitUsage, err)
	}
	// As write and tail: SIGHUP too, and not a signal ignored from the
	// start (a background job, nohup): stopSignals.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	// The summary is written at the end: a signal then must not leave the
	// run blocked on a consumer that does not read (as verify).
	done := make(chan struct{})
	defer close(done)
	out := newStallWriter(cmd.OutOrStdout(), stopSignals(), done, stallNotice(cmd.ErrOrStderr(), "compress-finished"))
	c := newCompressReport(ctx, out, cmd.ErrOrStderr(), f.output)
	opts.Observer = c.observe
	res, runErr := archive.Run(ctx, dir, opts)
	return c.finish(dir, res, runErr)
}

// compressReport is what compress-finished shows of a run: the progress
// line and each failure on stderr as the run goes (observe), then the
// summary and the exit code (finish). It is apart from runCompress so that
// tests can run pkg/archive with an Observer of their own around observe.
type compressReport struct {
	ctx            context.Context // cancelled by SIGINT/SIGTERM/SIGHUP
	stdout, stderr io.Writer
	output         string // text or json
	prog           *progress

	total, done     int64
	segs, totalSegs int
	// planned is each planned segment's size: what it counts for in done
	// once finished, whatever it read (a segment failed or skipped before
	// it started read nothing), so that done ends at total.
	planned map[uint64]int64
}

func newCompressReport(ctx context.Context, stdout, stderr io.Writer, output string) *compressReport {
	return &compressReport{ctx: ctx, stdout: stdout, stderr: stderr, output: output,
		prog: newProgress(stderr, "compress-finished")}
}

// observe is the run's Observer; pkg/archive serializes its calls.
func (c *compressReport) observe(ev archive.Event) {
	switch ev.Step {
	case archive.StepPlanned:
		c.total, c.totalSegs = ev.Plan.Bytes(), len(ev.Plan.Resolve)+len(ev.Plan.Compress)
		c.planned = make(map[uint64]int64, c.totalSegs)
		for _, cs := range [][]archive.Candidate{ev.Plan.Resolve, ev.Plan.Compress} {
			for _, cand := range cs {
				c.planned[cand.Seq] = cand.Size
			}
		}
		for _, s := range ev.Plan.Skipped {
			if s.Err != nil {
				c.totalSegs++ // reported as failed
			}
		}
	case archive.StepFailed:
		// A segment cut short by the signal is no failure: the summary
		// says the run was interrupted.
		if !cancel.Ended(c.ctx, ev.Err) {
			c.prog.Done()
			fmt.Fprintf(c.stderr, "auditseg compress-finished: %v\n", ev.Err)
		}
		c.done += c.plannedBytes(ev)
		c.segs++
	case archive.StepDone, archive.StepSkipped:
		c.done += c.plannedBytes(ev)
		c.segs++
	default:
		return
	}
	c.prog.UpdateItems(c.segs, c.totalSegs, c.done, c.total)
}

// plannedBytes is what the segment of ev counts for in the progress: its
// planned size, or what it read if it was not planned (a segment skipped
// by the plan as unreadable is reported as failed).
func (c *compressReport) plannedBytes(ev archive.Event) int64 {
	if n, ok := c.planned[ev.Seq]; ok {
		return n
	}
	return ev.BytesIn
}

// finish writes the summary of the run archive.Run returned and gives the
// command's error, carrying the exit code.
func (c *compressReport) finish(dir string, res *archive.Result, runErr error) error {
	c.prog.Done()
	stdout, stderr := c.stdout, c.stderr
	interrupted := runErr != nil && c.ctx.Err() != nil
	if res == nil || res.Plan == nil {
		// Nothing was planned: DIR is missing or unreadable, or another
		// run holds it. JSON output still says so, for scripts.
		if c.output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(compressJSONError{Dir: dir, DirBase64: names.Base64(dir), Error: runErr.Error(), Interrupted: interrupted})
		}
		if errors.Is(runErr, archive.ErrBusy) {
			return withCode(exitFailure, runErr)
		}
		return withCode(exitUsage, runErr)
	}

	if !res.DryRun {
		// A damaged segment is left as it is, and said so: --dry-run lists
		// every skip, a real run only these.
		for _, s := range res.Plan.Skipped {
			if s.Damaged {
				fmt.Fprintf(stderr, "auditseg compress-finished: warning: skipped %s: %s\n", s.Path, s.Reason)
			}
		}
	}
	var err error
	if c.output == "json" {
		err = writeCompressJSON(stdout, res, runErr, interrupted)
	} else {
		err = writeCompressText(stdout, res, interrupted)
	}
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("write output: %w", err))
	}
	switch {
	case interrupted:
		return withCode(exitFailure, fmt.Errorf("interrupted: %w; segments finished so far stay archived, run again to finish", runErr))
	case runErr != nil:
		return withCode(exitFailure, runErr)
	case res.Failed > 0:
		return withCode(exitFailure, fmt.Errorf("%d of %d segments failed; their originals are untouched", res.Failed, len(res.Segments)))
	}
	return nil
}

func ratio(in, out int64) float64 {
	if out == 0 {
		return 0
	}
	return float64(in) / float64(out)
}

func writeCompressText(w io.Writer, res *archive.Result, interrupted bool) error {
	var b strings.Builder
	p := res.Plan
	if res.DryRun {
		for _, t := range p.Temps {
			fmt.Fprintf(&b, "would remove leftover %s\n", t)
		}
		for _, c := range p.Resolve {
			fmt.Fprintf(&b, "would resolve %s: verify %s against it, then remove the original\n", c.Path, c.Archive)
		}
		for _, c := range p.Compress {
			fmt.Fprintf(&b, "would compress %s (%s, sealed %s)\n", c.Path, humanBytes(c.Size), c.SealedAt.UTC().Format(time.RFC3339))
		}
		for _, s := range p.Skipped {
			fmt.Fprintf(&b, "skip %s: %s\n", s.Path, s.Reason)
		}
		fmt.Fprintf(&b, "dry run: %s, %d bytes (%s) would be compressed; %d already archived, %d skipped\n",
			plural(p.Segments(), "segment"), p.Bytes(), humanBytes(p.Bytes()), p.Archived, len(p.Skipped))
		_, err := io.WriteString(w, b.String())
		return err
	}
	if n := len(res.TempsRemoved); n > 0 {
		fmt.Fprintf(&b, "removed %d leftover temporary file(s) of an interrupted run\n", n)
	}
	if p.Segments() == 0 && res.Failed == 0 && !interrupted {
		// "0 segments, 0 -> 0 bytes, ratio 0.00" read as a run that
		// failed to find the log; say what is there, as the dry run does.
		fmt.Fprintf(&b, "compress-finished: nothing to compress: %s already archived, %d skipped",
			plural(p.Archived, "segment"), len(p.Skipped))
		if len(p.Skipped) > 0 {
			b.WriteString(" (--dry-run says why)")
		}
		b.WriteString("\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "compress-finished: %s, %d -> %d bytes (%s -> %s), ratio %.2f, elapsed %s",
		plural(res.Done, "segment"), res.BytesIn, res.BytesOut, humanBytes(res.BytesIn), humanBytes(res.BytesOut),
		ratio(res.BytesIn, res.BytesOut), res.Elapsed.Round(time.Millisecond))
	if res.Failed > 0 {
		fmt.Fprintf(&b, ", %d FAILED", res.Failed)
	}
	if res.Skipped > 0 {
		// Removed by something else (retention) while the run was on
		// them: nothing to archive, nothing wrong. -o json names them.
		fmt.Fprintf(&b, ", %d skipped (removed while compress-finished ran)", res.Skipped)
	}
	if interrupted {
		b.WriteString(", interrupted")
		if res.Interrupted > 0 {
			fmt.Fprintf(&b, " (%d left as they were)", res.Interrupted)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// compressJSON is the -o json summary. Its *_base64 fields, and those of
// the types below, are names.Base64 of the name beside them: JSON text
// cannot hold a name that is not UTF-8 (as verify's).
type compressJSON struct {
	Dir            string             `json:"dir"`
	DirBase64      string             `json:"dir_base64,omitempty"`
	DryRun         bool               `json:"dry_run"`
	Segments       int                `json:"segments"`
	Failed         int                `json:"failed"`
	BytesIn        int64              `json:"bytes_in"`
	BytesOut       int64              `json:"bytes_out"`
	Ratio          float64            `json:"ratio"`
	ElapsedSeconds float64            `json:"elapsed_seconds"`
	Interrupted    bool               `json:"interrupted"`
	Error          string             `json:"error,omitempty"` // the run stopped for this (not a segment's failure)
	TempsRemoved   []string           `json:"temps_removed"`
	TempsBase64    []string           `json:"temps_removed_base64,omitempty"` // names.List
	Results        []compressJSONItem `json:"results"`
	Planned        []compressJSONPlan `json:"planned"`
	Skipped        []compressJSONSkip `json:"skipped"`
	Archived       int                `json:"already_archived"`
}

// compressJSONError is the JSON output of a run that could not start.
type compressJSONError struct {
	Dir         string `json:"dir"`
	DirBase64   string `json:"dir_base64,omitempty"`
	Error       string `json:"error"`
	Interrupted bool   `json:"interrupted"`
}

type compressJSONItem struct {
	Seq             uint64 `json:"seq"`
	Original        string `json:"original"`
	OriginalBase64  string `json:"original_base64,omitempty"`
	Archive         string `json:"archive"`
	ArchiveBase64   string `json:"archive_base64,omitempty"`
	Outcome         string `json:"outcome"`
	BytesIn         int64  `json:"bytes_in"`
	BytesOut        int64  `json:"bytes_out"`
	OriginalRemoved bool   `json:"original_removed"`
	Error           string `json:"error,omitempty"`
	Reason          string `json:"reason,omitempty"` // outcome "skipped": why, as in "skipped"
}

type compressJSONPlan struct {
	Seq           uint64 `json:"seq"`
	Path          string `json:"path"`
	PathBase64    string `json:"path_base64,omitempty"`
	Archive       string `json:"archive"`
	ArchiveBase64 string `json:"archive_base64,omitempty"`
	Action        string `json:"action"` // compress or resolve
	Bytes         int64  `json:"bytes"`
}

type compressJSONSkip struct {
	Seq        uint64 `json:"seq"`
	Path       string `json:"path"`
	PathBase64 string `json:"path_base64,omitempty"`
	Reason     string `json:"reason"`
	Damaged    bool   `json:"damaged"`
}

func writeCompressJSON(w io.Writer, res *archive.Result, runErr error, interrupted bool) error {
	p := res.Plan
	j := compressJSON{
		Dir: res.Dir, DirBase64: names.Base64(res.Dir), DryRun: res.DryRun, Segments: res.Done, Failed: res.Failed,
		BytesIn: res.BytesIn, BytesOut: res.BytesOut, Ratio: ratio(res.BytesIn, res.BytesOut),
		ElapsedSeconds: res.Elapsed.Seconds(), Interrupted: interrupted, Archived: p.Archived,
		TempsRemoved: append([]string{}, res.TempsRemoved...),
		Results:      []compressJSONItem{}, Planned: []compressJSONPlan{}, Skipped: []compressJSONSkip{},
	}
	if runErr != nil && !interrupted {
		j.Error = runErr.Error()
	}
	if res.DryRun {
		j.TempsRemoved = append(j.TempsRemoved[:0], p.Temps...) // would be removed
	}
	j.TempsBase64 = names.List(j.TempsRemoved)
	for _, s := range res.Segments {
		it := compressJSONItem{Seq: s.Seq, Original: s.Original, OriginalBase64: names.Base64(s.Original),
			Archive: s.Archive, ArchiveBase64: names.Base64(s.Archive), Outcome: string(s.Outcome),
			BytesIn: s.BytesIn, BytesOut: s.BytesOut, OriginalRemoved: s.OriginalRemoved, Reason: s.Reason}
		if s.Err != nil {
			it.Error = s.Err.Error()
		}
		j.Results = append(j.Results, it)
	}
	for _, c := range p.Resolve {
		j.Planned = append(j.Planned, planJSON(c, "resolve"))
	}
	for _, c := range p.Compress {
		j.Planned = append(j.Planned, planJSON(c, "compress"))
	}
	for _, s := range p.Skipped {
		j.Skipped = append(j.Skipped, compressJSONSkip{Seq: s.Seq, Path: s.Path, PathBase64: names.Base64(s.Path),
			Reason: s.Reason, Damaged: s.Damaged})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func planJSON(c archive.Candidate, action string) compressJSONPlan {
	return compressJSONPlan{Seq: c.Seq, Path: c.Path, PathBase64: names.Base64(c.Path),
		Archive: c.Archive, ArchiveBase64: names.Base64(c.Archive), Action: action, Bytes: c.Size}
}
