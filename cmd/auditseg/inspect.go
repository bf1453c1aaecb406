package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newInspectCmd) }

type inspectFlags struct {
	hex     bool
	preview int
	hexMax  int
}

func newInspectCmd() *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect SEGMENT",
		Short: "Dump a segment file: header, every frame slot, footer",
		Long: `Prints the header of a segment file (.seg or .seg.zst), then one line per slot
of its record area as the reader's decoder sees it - committed DATA, PAD and
END frames, reserved frames, zero gaps, torn (damaged) regions, the zero tail,
bytes after END - with offset, length, state, whether the CRC matches, the
timestamp and the start of the payload, then the footer. --hex adds a hex dump
of the header, each slot and the footer. Damage is shown, not refused. The
payload shown is a copy checked against the frame's CRC: a frame whose bytes
changed after the walk checked them (the file was cut or written to
meanwhile) shows CRC bad and CHANGED instead. A file shorter than its header
says, or an archive whose content is, is shown cut: slots running past its
end say so, and the footer is MISSING or CUT, with the offsets. An archive
whose zstd content is damaged is dumped as far as it decodes, the damage on a
"content DAMAGED" line, what is lost shown as a cut file's missing bytes are.

Exit codes: 0 the file was dumped (damaged or not; use verify to judge it);
1 the file is damaged so that nothing of it can be dumped (an archive none
of whose segment decodes, a file larger than any segment; as verify and
tail report it); 2 bad usage or the file cannot be read.`,
		Args: wantArgs("one segment file or archive", 1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.preview < 0 || f.hexMax < 0 {
				return withCode(exitUsage, fmt.Errorf("--preview %d, --hex-max %d: byte counts cannot be negative", f.preview, f.hexMax))
			}
			path := segment.CleanName(args[0]) // the file verify and tail read by that name
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return withCode(exitUsage, inspectDirError(path))
			}
			in, err := verify.Inspect(path)
			if errors.Is(err, segment.ErrCorrupt) {
				// Damage in the file, as verify and tail call it: not a
				// usage or I/O error.
				return withCode(exitFailure, err)
			}
			if err != nil {
				return withCode(exitUsage, err)
			}
			defer in.Close()
			if err := writeInspect(cmd.OutOrStdout(), in, f); err != nil {
				var re readError
				if errors.As(err, &re) {
					return withCode(exitUsage, re.err)
				}
				return withCode(exitUsage, fmt.Errorf("write output: %w", err))
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.hex, "hex", false, "add a hex dump of the header, every slot and the footer")
	fl.IntVar(&f.preview, "preview", 32, "payload bytes shown on each frame line")
	fl.IntVar(&f.hexMax, "hex-max", 4096, "bytes of each slot shown by --hex (the rest is counted)")
	return c
}

// inspectDirError explains that inspect takes a file, naming one of the
// directory's segments if it has any. One without any gets no example: a
// file inside it that is not there, or verify for a directory that is no
// log, would send the user further astray (a directory named like a
// segment, 00000000000000000001.seg, made so by mistake, is one).
func inspectDirError(dir string) error {
	what := dir + " is a directory, not a segment file: inspect takes one segment file"
	if l, err := segment.List(dir); err == nil && len(l.Segments) > 0 {
		return fmt.Errorf("%s, such as %s; 'auditseg verify %s' checks a whole log", what, l.Segments[0].Path, dir)
	}
	return fmt.Errorf("%s (a %s file, or its %s archive), and %s holds none", what, segment.SegmentExt, segment.ArchiveExt, dir)
}

// readError is a failure to read the segment while it was being dumped,
// as opposed to a failure to write the output.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

func writeInspect(out io.Writer, in *verify.Inspection, f inspectFlags) error {
	w := &errWriter{w: out}
	h := in.Header
	switch {
	case !in.Archived:
		w.printf("segment %s (%d bytes)\n", in.Path, in.FileSize)
	case in.ArchiveSize > 0:
		// FileSize is the content's: the archive file's own size is
		// what ls shows, and the ratio the user may be checking. From
		// the open that decompressed it, not a second look at the name.
		w.printf("archive %s (%d bytes, %d decompressed)\n", in.Path, in.ArchiveSize, in.FileSize)
	default:
		w.printf("archive %s (%d bytes decompressed)\n", in.Path, in.FileSize)
	}
	if in.ArchiveErr != nil {
		w.printf("content  DAMAGED: %v\n", in.ArchiveErr)
	}
	if in.HeaderErr != nil {
		w.printf("header   DAMAGED: %v\n", in.HeaderErr)
		if in.SeqFromName {
			w.printf("         frames are checked with sequence %d from the file name\n", in.Seq)
		}
	} else {
		w.printf("header   seq %d, size %d, created %s\n", h.Seq, h.Size, fmtNanos(h.Created))
		if in.CheckErr != nil {
			w.printf("         MISMATCH: %v\n", in.CheckErr)
		}
	}
	if f.hex {
		w.hexdump(in.HeaderBytes(), 0, f.hexMax)
	}
	// A segment shorter than its header says reads on as zeros, which
	// Inspect leaves out of the bytes; slots and a footer beyond its end
	// must say so, not pass for empty or absent.
	cut, words := in.Cut, cutWordsOf(in)
	w.printf("\n%-8s %-9s %-5s %10s %10s  %-9s %-3s  %-30s  %s\n", "OFFSET", "SLOT", "TYPE", "LENGTH", "BYTES", "STATE", "CRC", "TIME", "PAYLOAD / REASON")
	counts := map[string]int{}
	var payload []byte
	serr := in.Slots(func(s verify.Slot) bool {
		counts[s.Kind]++
		typ, length, state, ts, detail := "-", "-", "-", "-", ""
		switch s.Kind {
		case verify.SlotData, verify.SlotPad, verify.SlotEnd, verify.SlotReserved:
			typ, length, state = frameType(s.Frame.Type), strconv.Itoa(int(s.Frame.Length)), s.Frame.State.String()
		case verify.SlotTorn:
			typ, length, state = frameType(s.Frame.Type), strconv.Itoa(int(s.Frame.Length)), s.Frame.State.String()
			detail = s.Reason
		case verify.SlotGarbage:
			detail = s.Reason
		}
		if s.Kind == verify.SlotReserved {
			typ = "-" // written only at commit
		}
		if s.Frame.State == segment.Committed && s.Kind != verify.SlotPad {
			ts = fmtNanos(s.Frame.Time)
		}
		if s.Kind == verify.SlotData {
			detail = dataSlot(&s, f.preview, &payload)
		}
		if cut >= 0 && s.Offset+s.Len > cut {
			note := words.runsPast
			if s.Offset >= cut {
				note = words.beyond
			}
			detail = strings.TrimPrefix(fmt.Sprintf("%s; %s %d", detail, note, cut), "; ")
		}
		w.printf("%-8d %-9s %-5s %10s %10d  %-9s %-3s  %-30s  %s\n", s.Offset, s.Kind, typ, length, s.Len, state, s.CRC, ts, detail)
		if f.hex && s.Bytes != nil {
			w.hexdump(s.Bytes, s.Offset, f.hexMax)
		}
		return w.err == nil
	})
	if serr != nil && w.err == nil {
		return readError{serr} // the file shrank: what follows is gone too
	}
	var parts []string
	for _, k := range []string{verify.SlotData, verify.SlotPad, verify.SlotEnd, verify.SlotReserved, verify.SlotGap, verify.SlotTorn, verify.SlotGarbage} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	if len(parts) > 0 {
		w.printf("slots: %s\n", strings.Join(parts, ", "))
	}
	w.printf("\n")
	footerAt := in.FooterAt
	says := fmt.Sprintf("the header says %d bytes", h.Size)
	if in.HeaderErr != nil { // a damaged archive's, its size from the zstd frame
		says = fmt.Sprintf("the archive says %d bytes", in.FileSize)
	}
	// A footer with no place (FooterAt -1: a damaged archive's header,
	// and no sequence or size to place it by) is not cut: it is unknown.
	shownCut := cut >= 0 && footerAt >= 0 && !in.Sealed()
	switch {
	case shownCut && cut <= footerAt:
		w.printf("footer   MISSING: %s %d, before the footer at %d (%s): %s, whether it was sealed cannot be told\n", words.ends, cut, footerAt, says, words.lost)
	case shownCut:
		w.printf("footer   CUT: %s %d, %d bytes into the footer at %d (%s): its other %d bytes are missing\n",
			words.ends, cut, cut-footerAt, footerAt, says, footerAt+segment.FooterSize-cut)
	case in.Sealed():
		ft := in.Footer
		flags := fmt.Sprintf("0x%x", ft.Flags)
		if ft.Flags&segment.FlagRecovered != 0 {
			flags += " (recovered)"
		}
		w.printf("footer   sealed %s, %d records, END at %d, flags %s\n", fmtNanos(ft.SealedAt), ft.Records, ft.EndOffset, flags)
		if ft.Records > 0 {
			w.printf("         records from %s to %s\n", fmtNanos(ft.MinTime), fmtNanos(ft.MaxTime))
		}
		w.printf("         prev digest %x\n         digest      %x\n", ft.PrevDigest, ft.Digest)
	case errors.Is(in.FooterErr, segment.ErrSealUnfinished):
		// Its other bytes are there (--hex shows them): absent would
		// contradict the dump.
		w.printf("footer   none: its seal did not finish (the footer was stored without its magic); not sealed\n")
	case in.Unsealed():
		w.printf("footer   none: the segment is not sealed\n")
	default:
		w.printf("footer   DAMAGED: %v\n", in.FooterErr)
	}
	if in.SummaryErr != nil {
		w.printf("summary  DAMAGED: %v\n", in.SummaryErr)
	}
	if f.hex && in.FooterBytes() != nil {
		w.hexdump(in.FooterBytes(), footerAt, f.hexMax)
	}
	return w.err
}

// cutWords name where a segment shown cut (Inspection.Cut) ends and how
// its footer went: the footer line's, and a slot's that runs past there
// or lies beyond it.
type cutWords struct{ ends, lost, runsPast, beyond string }

func cutWordsOf(in *verify.Inspection) cutWords {
	switch {
	case in.ArchiveErr != nil && in.Cut < in.FileSize:
		return cutWords{"the archive's content is lost from", "lost with it",
			"runs into the archive's content lost from", "in the archive's content lost from"}
	case in.Archived:
		return cutWords{"the archive's content ends at", "cut short",
			"runs past the end of the archive's content at", "beyond the end of the archive's content at"}
	}
	return cutWords{"the file ends at", "cut short", "runs past the end of the file at", "beyond the end of the file at"}
}

// dataSlot returns the PAYLOAD column of a data slot: the start of a copy
// of its payload (in *buf) checked against the frame's CRC. The mapping
// shows the file as it is now: cut since the walk checked the frame, the
// rest of the cut page reads as zeros, without a fault, and zeros shown
// as the record's would be a lie. Such a frame has its CRC column set to
// bad, and the column says it changed instead.
func dataSlot(s *verify.Slot, n int, buf *[]byte) string {
	p, err := s.AppendPayload((*buf)[:0])
	if err != nil {
		s.CRC = "bad"
		return "CHANGED after its check, not shown: " + err.Error()
	}
	*buf = p
	return preview(p, n)
}

func frameType(t byte) string {
	switch t {
	case segment.TypeData:
		return "DATA"
	case segment.TypePad:
		return "PAD"
	case segment.TypeEnd:
		return "END"
	}
	return fmt.Sprintf("0x%02x", t)
}

func fmtNanos(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// preview quotes the first n bytes of a payload: text as text, anything
// else escaped, with "…" when cut.
func preview(p []byte, n int) string {
	cut := len(p) > n
	if cut {
		p = p[:n]
		// Do not split a character: drop the bytes of one cut at the end
		// (at most utf8.UTFMax-1); invalid bytes before them stay, escaped.
		for i := 1; i < utf8.UTFMax && i <= len(p); i++ {
			if c := p[len(p)-i]; utf8.RuneStart(c) {
				if c >= utf8.RuneSelf && !utf8.FullRune(p[len(p)-i:]) {
					p = p[:len(p)-i]
				}
				break
			}
		}
	}
	s := strconv.Quote(string(p))
	if cut {
		s += "…"
	}
	return s
}

// errWriter keeps the first write error so the dump code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// hexdump prints b, which starts at file offset base, 16 bytes a line with
// file offsets, collapsing repeated lines to "*" as hexdump(1) does.
func (e *errWriter) hexdump(b []byte, base int64, limit int) {
	if e.err != nil || len(b) == 0 {
		return
	}
	rest := 0
	if limit >= 0 && len(b) > limit {
		b, rest = b[:limit], len(b)-limit
	}
	var prev []byte
	starred := false
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		if prev != nil && len(line) == 16 && string(line) == string(prev) {
			if !starred {
				e.printf("*\n")
				starred = true
			}
			continue
		}
		prev, starred = line, false
		var hx, asc strings.Builder
		for k := range 16 {
			if k == 8 {
				hx.WriteByte(' ')
			}
			if k >= len(line) {
				hx.WriteString("   ")
				continue
			}
			hx.WriteString(hex.EncodeToString(line[k : k+1]))
			hx.WriteByte(' ')
			if c := line[k]; c >= 0x20 && c < 0x7f {
				asc.WriteByte(c)
			} else {
				asc.WriteByte('.')
			}
		}
		e.printf("  %08x  %s |%s|\n", base+int64(i), hx.String(), asc.String())
	}
	if starred {
		e.printf("  %08x\n", base+int64(len(b)))
	}
	if rest > 0 {
		e.printf("  ... %d more bytes (--hex-max)\n", rest)
	}
}
