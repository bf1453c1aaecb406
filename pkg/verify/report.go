package verify

import (
	"encoding/json"
	"time"

	"github.com/auditseg/auditseg/internal/names"
	"github.com/auditseg/auditseg/pkg/segment"
)

// Class is the kind of a finding. The values are part of the JSON output
// and of the documented CLI behaviour; never rename them.
type Class string

const (
	// Torn: damaged bytes. A frame whose CRC fails or whose header is
	// impossible, a damaged segment header, a file whose size or name does
	// not match its header, an archive that does not decompress, non-zero
	// bytes in a record's alignment padding, or a DATA timestamp outside
	// the segment's lifetime (by more than Options.TimeTolerance).
	Torn Class = "torn"
	// Unfinished: space reserved and never committed: a negative length,
	// a zero gap followed by frames, a missing END frame or footer in the
	// unsealed tail of a log whose writer died. In that tail these are
	// crash residue (Finding.Residue), unless recovery will not seal
	// their segment; anywhere else they are damage.
	Unfinished Class = "unfinished"
	// MissingEnd: a sealed segment without its END frame at the footer's
	// end offset, or an unsealed segment that is not in the log's unsealed
	// tail (a later segment is sealed, or a live writer appends from a
	// later one on), or one in a dead writer's tail that recovery will
	// leave as it is (FORMAT.md section 8, steps 3.1, 3.2 and 3.4):
	// neither sealed nor recovered, nor to be.
	MissingEnd Class = "missing-end"
	// GarbageAfterEnd: non-zero bytes after the END frame's header.
	GarbageAfterEnd Class = "garbage-after-end"
	// Footer: a footer that does not decode, or whose record count, end
	// offset, time range, flags or digest disagree with the contents.
	Footer Class = "footer"
	// Chain: a footer whose previous-digest is not the digest of the
	// previous segment present, or, past segments recovery left unsealed
	// (damaged), of the last one sealed before them. The first segment
	// present starts the chain, so deleting the oldest segments never
	// trips it.
	Chain Class = "chain"
	// Gap: segment sequence numbers missing between present segments.
	Gap Class = "gap"
	// Unexpected: a file that does not belong in a log directory, a
	// leftover temporary file, or an archive whose original is still
	// present. Reported, never fatal.
	Unexpected Class = "unexpected"
)

// Classes lists every class in the order reports print them.
var Classes = []Class{Torn, Unfinished, MissingEnd, GarbageAfterEnd, Footer, Chain, Gap, Unexpected}

// Finding is one problem, located as precisely as the format allows.
type Finding struct {
	Class Class
	Path  string // the segment file (or the unexpected file)
	Seq   uint64 // the segment's sequence number (0 for unexpected files)
	// Offset is the file offset of the problem: the frame, the first bad
	// byte, or the start of the footer for whole-footer mismatches.
	Offset int64
	// Bytes is how many bytes from Offset the finding covers and that no
	// record could be read from (0 when it does not apply).
	Bytes  int64
	Reason string
	// Residue marks an unfinished finding in the unsealed tail of a log
	// whose writer is gone, in a segment recovery seals: what a crash
	// leaves. writer.Open repairs it (PAD frames, END, a footer with
	// FlagRecovered) without losing any committed record. Only such
	// findings allow exit code 3.
	Residue bool
}

// Position is the finding's place as a record address.
func (f Finding) Position() segment.Position {
	return segment.Position{Seq: f.Seq, Offset: f.Offset}
}

// Fatal reports whether the finding fails verification outright (exit 1).
func (f Finding) Fatal() bool { return f.Class != Unexpected && !f.Residue }

type findingJSON struct {
	Class    Class  `json:"class"`
	Path     string `json:"path"`
	Seq      uint64 `json:"seq"`
	Offset   int64  `json:"offset"`
	Position string `json:"position,omitempty"`
	// PathBase64: names.Base64.
	PathBase64 string `json:"path_base64,omitempty"`
	Bytes      int64  `json:"bytes"`
	Reason     string `json:"reason"`
	Residue    bool   `json:"crash_residue"`
	Fatal      bool   `json:"fatal"`
}

// MarshalJSON writes the documented field names (see the package comment).
func (f Finding) MarshalJSON() ([]byte, error) {
	j := findingJSON{Class: f.Class, Path: f.Path, PathBase64: names.Base64(f.Path), Seq: f.Seq, Offset: f.Offset, Bytes: f.Bytes,
		Reason: f.Reason, Residue: f.Residue, Fatal: f.Fatal()}
	if f.Class != Unexpected {
		j.Position = f.Position().String()
	}
	return json.Marshal(j)
}

// State describes a segment as found.
type State string

const (
	StateSealed    State = "sealed"    // footer valid, sealed by its writer
	StateRecovered State = "recovered" // footer valid, sealed by recovery
	// StateOpen: unsealed, in the log's unsealed tail: being written or
	// sealed (live writer), or left by a writer that died (see Residue).
	StateOpen State = "open"
	// StatePrepared: the newest segment, unsealed and holding no frame:
	// created ahead of need and not used yet.
	StatePrepared State = "prepared"
	// StateUnsealed: no footer although a later segment is sealed.
	StateUnsealed State = "unsealed"
	// StateDamaged: the header or the footer cannot be decoded.
	StateDamaged State = "damaged"
	// StateUnreadable: the file could not be read (Error says why).
	StateUnreadable State = "unreadable"
)

// Status is a segment's verdict.
type Status string

const (
	Pass Status = "PASS" // no finding
	Warn Status = "WARN" // only crash residue (and unexpected files)
	Fail Status = "FAIL" // at least one fatal finding, or unreadable
)

// SegmentReport is what verify found in one segment file.
type SegmentReport struct {
	Path     string `json:"path"`
	Seq      uint64 `json:"seq"`
	Archived bool   `json:"archived"`
	State    State  `json:"state"`
	Status   Status `json:"status"`
	// Live is true for a segment a live writer is still writing or sealing.
	Live bool `json:"live"`
	// Bytes is the segment's size (decompressed, for archives); FileBytes
	// the size of the file itself.
	Bytes     int64  `json:"bytes"`
	FileBytes int64  `json:"file_bytes"`
	Records   uint64 `json:"records"`
	// EndOffset is where the END frame starts, -1 when there is none. For
	// an archive checked by --quick, where its footer's copy puts it (the
	// content is not read).
	EndOffset int64 `json:"end_offset"`
	// Digest and PrevDigest are the footer's, hex; empty when unsealed.
	Digest     string `json:"digest,omitempty"`
	PrevDigest string `json:"prev_digest,omitempty"`
	// DigestChecked: the digest was recomputed (not in quick mode, only
	// for sealed segments); DigestOK: and it matched.
	DigestChecked bool `json:"digest_checked"`
	DigestOK      bool `json:"digest_ok"`
	// ChainChecked: PrevDigest was compared with the previous segment's
	// digest, or past segments recovery left unsealed with the last sealed
	// before them (false for the first segment present, after a gap, or
	// after a segment whose digest is unknown: one whose footer is
	// damaged, say).
	ChainChecked bool   `json:"chain_checked"`
	Findings     int    `json:"findings"`
	Error        string `json:"error,omitempty"`
}

// LogReport describes one log directory that was verified.
type LogReport struct {
	Dir         string `json:"dir"`
	WriterAlive bool   `json:"writer_alive"`
	WriterPID   int    `json:"writer_pid,omitempty"`
}

// Totals sum up a report. Findings counts every finding by class,
// including those beyond Options.MaxFindings that Report.Findings leaves
// out (Omitted of them).
type Totals struct {
	Segments int           `json:"segments"`
	Sealed   int           `json:"sealed"`
	Records  uint64        `json:"records"`
	Bytes    int64         `json:"bytes"`
	Findings map[Class]int `json:"findings"`
	Fatal    int           `json:"fatal"`
	Residue  int           `json:"crash_residue"`
	Errors   int           `json:"errors"`
	Omitted  int           `json:"omitted"`
	Elapsed  time.Duration `json:"-"`
}

// Throughput is segment bytes verified per second.
func (t Totals) Throughput() float64 {
	if s := t.Elapsed.Seconds(); s > 0 {
		return float64(t.Bytes) / s
	}
	return 0
}

// MarshalJSON adds elapsed_seconds and bytes_per_second and lists every
// class in findings, zeros included, so consumers need no defaults.
func (t Totals) MarshalJSON() ([]byte, error) {
	type plain Totals
	all := make(map[Class]int, len(Classes))
	for _, c := range Classes {
		all[c] = t.Findings[c]
	}
	p := plain(t)
	p.Findings = all
	return json.Marshal(struct {
		plain
		ElapsedSeconds float64 `json:"elapsed_seconds"`
		BytesPerSecond float64 `json:"bytes_per_second"`
	}{p, t.Elapsed.Seconds(), t.Throughput()})
}

// Report is the result of a verification.
type Report struct {
	// Version of this JSON layout; bumped only on incompatible changes.
	Version  int             `json:"version"`
	Quick    bool            `json:"quick"`
	Logs     []LogReport     `json:"logs"`
	Segments []SegmentReport `json:"segments"`
	Findings []Finding       `json:"findings"`
	Totals   Totals          `json:"totals"`
	// Anchors: what became of each Options.Anchors entry, in segment
	// order; omitted when none was given.
	Anchors []AnchorReport `json:"anchors,omitempty"`

	maxFindings int  // Options.MaxFindings, for what belongs to no segment
	whole       bool // one log directory was checked, whole (NextAnchor)
}

// ReportVersion is the current Report.Version.
const ReportVersion = 1

// Exit codes of `auditseg verify`, decided here so every front end agrees.
const (
	ExitClean      = 0 // no finding (unexpected files aside)
	ExitFindings   = 1 // at least one fatal finding
	ExitError      = 2 // usage or I/O error: something could not be read
	ExitUnfinished = 3 // only crash residue in the tail of a log whose writer died
)

// ExitCode is the verdict as a process exit code. Fatal findings win over
// I/O errors (the log is known to be damaged), which win over residue.
// strict turns ExitUnfinished into ExitFindings.
func (r *Report) ExitCode(strict bool) int {
	switch {
	case r.Totals.Fatal > 0:
		return ExitFindings
	case r.Totals.Errors > 0:
		return ExitError
	case r.Totals.Residue > 0 && strict:
		return ExitFindings
	case r.Totals.Residue > 0:
		return ExitUnfinished
	}
	return ExitClean
}
