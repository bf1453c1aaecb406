package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/fatih/color"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newVerifyCmd) }

type verifyFlags struct {
	output        string
	strict        bool
	quick         bool
	timeTolerance time.Duration
	maxFindings   int
	jobs          int
	anchors       []string
}

func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify PATH...",
		Short: "Check logs and segment files: every frame, footer and the digest chain",
		Long: `Verifies each PATH: a log directory as a whole, or individual segment files
(.seg or .seg.zst). Every frame's CRC, every sealed footer (record count, end
offset, time range, BLAKE3 digest), the chain of digests between segments,
missing sequence numbers, and files that do not belong are checked. Damage is
reported with its file, offset (SEQ:OFFSET) and class, and verification goes on
past it.

Finding classes: torn, unfinished, missing-end, garbage-after-end, footer,
chain, gap, unexpected (reported, never fatal).

The newest segments of a log whose writer is alive are work in progress and
are not judged (from the first segment it appends to on, which its LOCK file
names). If the writer died, what it left unfinished (reserved frames, an
unsealed last segment) is crash residue: exit 3; opening the log with the
writer repairs it. Not in a segment recovery leaves unsealed (a damaged
header, a torn frame, an END claim with bytes behind it): that one is
missing-end, its reserved frames fatal.

Exit codes: 0 clean; 1 findings (torn, footer, chain, gap, missing-end,
garbage-after-end, or unfinished outside the crash tail or in a segment of it
that recovery leaves unsealed); 2 bad usage, I/O error, or interrupted by
SIGINT, SIGTERM or SIGHUP (nothing verified; a report its reader does not
take within 5s of such a signal, or by a second one, is given up); 3 only
crash residue
in the tail of a log whose writer is gone, in segments recovery seals
(--strict makes this 1). A reader of the report that went away (stdout a
pipe closed) ends verify by SIGPIPE, no code; one of stderr changes none.`,
		Args: wantArgs("at least one log directory or segment file", 1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, args, f)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&f.strict, "strict", false, "treat crash residue (exit 3) as a failure (exit 1)")
	fl.BoolVar(&f.quick, "quick", false, "sealed segments: headers, footers, END frames and the chain only (no frame CRCs, no digests; archives from their summary, not decompressed); unsealed ones are still walked in full")
	fl.DurationVar(&f.timeTolerance, "time-tolerance", verify.DefaultTimeTolerance,
		"how far a record's timestamp may precede its segment's creation (or follow its sealing); 0 disables the check, negative values are refused")
	fl.IntVar(&f.maxFindings, "max-findings", verify.DefaultMaxFindings, "findings listed per segment and kind, and unexpected files per log directory; the rest are counted")
	fl.IntVarP(&f.jobs, "jobs", "j", 0, "segments verified in parallel (default: number of CPUs)")
	fl.StringArrayVar(&f.anchors, "anchor", nil, "SEQ:DIGEST, a sealed segment's digest recorded by an earlier run (the \"anchor for a later run\" line, or a digest of its JSON): a rewrite of any segment up to SEQ, or SEQ missing at the end of the log, is a chain finding (repeatable; one log directory only)")
	return c
}

func runVerify(cmd *cobra.Command, paths []string, f verifyFlags) error {
	if f.output != "text" && f.output != "json" {
		return withCode(exitUsage, fmt.Errorf("--output %q: want text or json", f.output))
	}
	if f.jobs < 0 {
		return withCode(exitUsage, fmt.Errorf("--jobs %d: want a positive number (or 0: one per CPU)", f.jobs))
	}
	if f.maxFindings < 1 {
		return withCode(exitUsage, fmt.Errorf("--max-findings %d: want at least 1", f.maxFindings))
	}
	switch {
	case f.timeTolerance < 0:
		// Only 0 is documented as "off"; a negative value read as off
		// too, silently, which a typo ("-1h" for "1h") should not do.
		return withCode(exitUsage, fmt.Errorf("--time-tolerance %s: want 0 or more (0 turns the check off)", f.timeTolerance))
	case f.timeTolerance == 0:
		f.timeTolerance = -1 // the library reads 0 as "default"
	}
	var anchors []verify.Anchor
	for _, text := range f.anchors {
		a, err := verify.ParseAnchor(text)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("--anchor: %w", err))
		}
		anchors = append(anchors, a)
	}
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	prog := newProgress(stderr, "verify")
	// As tail and compress-finished: SIGHUP too, and not a signal ignored
	// from the start (nohup): stopSignals. A segment's open may wait for
	// a lease's break (46 s by default), which a signal ends.
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	// The report is written once the run is over: a signal then (a
	// consumer not reading, as less until scrolled) must not leave verify
	// blocked in that write.
	done := make(chan struct{})
	defer close(done)
	out := newStallWriter(stdout, stopSignals(), done, stallNotice(stderr, "verify"))
	rep, err := verify.PathsContext(ctx, paths, verify.Options{
		Quick: f.quick, TimeTolerance: f.timeTolerance, MaxFindings: f.maxFindings,
		Workers: f.jobs, Progress: prog.Update, Anchors: anchors,
	})
	prog.Done()
	if errors.Is(err, context.Canceled) {
		// Stopped: what was read is no verdict (verify.PathsContext). A
		// signal landing after another error leaves that error's word.
		err = errors.New("interrupted")
	}
	if err != nil {
		if f.output == "json" {
			// A script reading stdout gets a document whatever happened
			// (a PATH missing or unreadable, a signal), as from
			// compress-finished.
			_ = writeVerifyJSON(out, verifyJSONError{Version: verify.ReportVersion, Error: err.Error()})
		}
		return withCode(exitUsage, err)
	}
	if f.output == "json" {
		err = writeVerifyJSON(out, rep)
	} else {
		err = writeVerifyText(out, rep, f.strict, useColor(stdout))
	}
	if err != nil {
		return withCode(exitUsage, fmt.Errorf("write output: %w", err))
	}
	// A directory without a single segment is an empty log, which is
	// clean; but a CI job pointed at the wrong directory would pass
	// without a word.
	for _, d := range emptyLogs(rep) {
		fmt.Fprintf(stderr, "auditseg verify: warning: %s holds no segment files\n", d)
	}
	t := rep.Totals
	switch code := rep.ExitCode(f.strict); code {
	case verify.ExitClean:
		return nil
	case verify.ExitFindings:
		if t.Fatal == 0 {
			return withCode(code, fmt.Errorf("verification failed: %s of crash residue (--strict)", plural(t.Residue, "finding")))
		}
		first := ""
		for _, fd := range rep.Findings {
			if fd.Fatal() {
				// Name the first one on stderr too: CI logs often show only it.
				first = fmt.Sprintf(" (first: %s offset %d: %s: %s)", printable(fd.Path), fd.Offset, fd.Class, printable(fd.Reason))
				break
			}
		}
		return withCode(code, fmt.Errorf("verification failed: %s%s", plural(t.Fatal, "fatal finding"), first))
	case verify.ExitError:
		return withCode(code, fmt.Errorf("%s could not be read", plural(t.Errors, "segment file")))
	case verify.ExitUnfinished:
		return withCode(code, errors.New("unfinished: a writer died mid-write; nothing committed is missing (--strict makes this a failure)"))
	default:
		return withCode(code, errors.New("verification failed"))
	}
}

// emptyLogs lists the log directories of rep with no segment in it.
func emptyLogs(rep *verify.Report) []string {
	has := map[string]bool{}
	for _, s := range rep.Segments {
		has[filepath.Dir(s.Path)] = true
	}
	var empty []string
	for _, l := range rep.Logs {
		if !has[filepath.Clean(l.Dir)] {
			empty = append(empty, l.Dir)
		}
	}
	return empty
}

// verifyJSONError is the JSON output of a run that could not start, or
// was interrupted.
type verifyJSONError struct {
	Version int    `json:"version"`
	Error   string `json:"error"`
}

func writeVerifyJSON(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// palette colours the verdict words; without colour every method returns
// its argument unchanged.
type palette struct{ pass, warn, fail, dim *color.Color }

func newPalette(on bool) palette {
	p := palette{color.New(color.FgGreen, color.Bold), color.New(color.FgYellow, color.Bold),
		color.New(color.FgRed, color.Bold), color.New(color.Faint)}
	for _, c := range []*color.Color{p.pass, p.warn, p.fail, p.dim} {
		if on {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

func (p palette) status(s verify.Status) string {
	switch s {
	case verify.Pass:
		return p.pass.Sprint(s)
	case verify.Warn:
		return p.warn.Sprint(s)
	}
	return p.fail.Sprint(s)
}

// writeVerifyText prints one line per segment, the findings, and a summary.
func writeVerifyText(w io.Writer, rep *verify.Report, strict, colorOn bool) error {
	p := newPalette(colorOn)
	var b strings.Builder
	pathW, stateW, numW := 0, 0, 0
	states := make([]string, len(rep.Segments))
	for i, s := range rep.Segments {
		numW = max(numW, len(strconv.FormatUint(s.Records, 10)))
		states[i] = string(s.State)
		if s.Archived {
			states[i] += ", archived"
		}
		if s.Live {
			states[i] += ", live"
		}
		pathW, stateW = max(pathW, len(printable(s.Path))), max(stateW, len(states[i]))
	}
	for i, s := range rep.Segments {
		// The count right-aligned and "record" padded to "records": the
		// sizes after them line up.
		word := "records"
		if s.Records == 1 {
			word = "record "
		}
		fmt.Fprintf(&b, "%s  %-*s  %-*s  %*d %s  %9s", p.status(s.Status), pathW, printable(s.Path), stateW, states[i],
			numW, s.Records, word, humanBytes(s.Bytes))
		switch {
		case s.Error != "":
			fmt.Fprintf(&b, "  unreadable: %s", printable(s.Error))
		case s.Findings > 0:
			b.WriteString("  " + plural(s.Findings, "finding"))
		}
		b.WriteByte('\n')
	}
	if len(rep.Findings) > 0 {
		b.WriteString("\nfindings:\n")
		for _, f := range rep.Findings {
			pos := f.Position().String()
			if f.Class == verify.Unexpected {
				pos = "-"
			}
			reason := printable(f.Reason)
			if f.Residue {
				reason = "[crash residue] " + reason
			}
			cls := p.fail.Sprintf("%-17s", f.Class)
			if !f.Fatal() {
				cls = p.warn.Sprintf("%-17s", f.Class)
			}
			fmt.Fprintf(&b, "  %s %-16s %s: %s\n", cls, pos, printable(f.Path), reason)
		}
		if rep.Totals.Omitted > 0 {
			fmt.Fprintf(&b, "  ... and %d more not listed (--max-findings)\n", rep.Totals.Omitted)
		}
	}
	writeVerifySummary(&b, rep, strict, p)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeVerifySummary(b *strings.Builder, rep *verify.Report, strict bool, p palette) {
	t := rep.Totals
	mode := ""
	if rep.Quick {
		mode = " (quick: footers and chain only, no frame CRCs or digests)"
	}
	fmt.Fprintf(b, "\n%s (%d sealed), %s, %s verified in %v (%s/s)%s\n",
		plural(t.Segments, "segment"), t.Sealed, plural(int(t.Records), "record"), humanBytes(t.Bytes), t.Elapsed.Round(time.Millisecond),
		humanBytes(int64(t.Throughput())), mode)
	var parts []string
	for _, c := range verify.Classes {
		if n := t.Findings[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		b.WriteString("findings: none\n")
	} else {
		fmt.Fprintf(b, "findings: %s (%d fatal, %d crash residue)\n", strings.Join(parts, ", "), t.Fatal, t.Residue)
	}
	for _, l := range rep.Logs {
		if l.WriterAlive {
			// 0: LOCK removed, or not readable by this user (the
			// directory lock told).
			pid := "pid unknown"
			if l.WriterPID != 0 {
				pid = fmt.Sprintf("pid %d", l.WriterPID)
			}
			fmt.Fprintf(b, "writer alive in %s (%s): its newest segments are in progress\n", printable(l.Dir), pid)
		}
	}
	code := rep.ExitCode(strict)
	writeAnchors(b, rep, code)
	verdict := map[int]string{
		verify.ExitClean:      p.pass.Sprint("PASS"),
		verify.ExitFindings:   p.fail.Sprint("FAIL"),
		verify.ExitError:      p.fail.Sprint("ERROR"),
		verify.ExitUnfinished: p.warn.Sprint("UNFINISHED"),
	}[code]
	fmt.Fprintf(b, "result: %s (exit %d)\n", verdict, code)
	if code == verify.ExitUnfinished {
		b.WriteString("a writer died and left its newest segments unfinished; opening the log with the writer repairs them (e.g. auditseg write DIR </dev/null)\n")
	}
}

// plural renders "1 record", "2 records".
func plural[N ~int | ~int64 | ~uint64](n N, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// writeAnchors says what became of each --anchor, and, for a clean log,
// the anchor a later run can be given (Report.NextAnchor).
func writeAnchors(b *strings.Builder, rep *verify.Report, code int) {
	for _, a := range rep.Anchors {
		switch {
		case a.OK:
			fmt.Fprintf(b, "anchor: segment %d matches\n", a.Seq)
		case a.Checked:
			fmt.Fprintf(b, "anchor: segment %d does not match (see the findings above)\n", a.Seq)
		default:
			fmt.Fprintf(b, "anchor: segment %d not checked: older than the segment before the oldest present, or unreadable\n", a.Seq)
		}
	}
	if a, ok := rep.NextAnchor(); ok && code == verify.ExitClean {
		// Given to a later run, it pins every segment up to this one.
		fmt.Fprintf(b, "anchor for a later run: --anchor %s\n", a)
	}
}
