package verify

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// Options configure a verification. The zero value verifies fully.
type Options struct {
	// Quick checks headers, footers, END frames and the chain, but not
	// frames: no per-frame CRC, no digest recomputation, no check of the
	// bytes after END. Unsealed segments are still walked in full (they
	// have no footer to trust, and there are few of them), and the digest
	// of one that lost only its footer is computed again when a sealed
	// segment follows, to check the link (FORMAT.md section 6).
	Quick bool
	// TimeTolerance is how far a DATA frame's timestamp may be before its
	// segment's creation time (or after its sealing time) before it is a
	// finding. 0 means DefaultTimeTolerance; a negative value turns the
	// check off.
	TimeTolerance time.Duration
	// MaxFindings bounds how many findings of each segment the report
	// lists (each kind separately), and how many unexpected files of each
	// log directory; the rest are only counted. 0 means
	// DefaultMaxFindings. It keeps memory bounded on a segment that is
	// damaged all over.
	MaxFindings int
	// Workers is how many segments are checked at once; 0 means
	// GOMAXPROCS. Segments are independent until the chain check, which
	// needs only their footers.
	Workers int
	// Progress, if set, is called with the bytes of segment files checked
	// so far and the total, from one goroutine at a time.
	Progress func(done, total int64)
	// Logger receives diagnostics that are not findings (a lock file that
	// cannot be queried). nil discards them.
	Logger *slog.Logger
	// Anchors are digests of sealed segments recorded outside the log
	// (anchor.go): a run with any checks exactly one log directory, and
	// reports a segment whose digest differs from its anchor, or that is
	// missing at or before the log's end, as a chain finding.
	Anchors []Anchor

	// spareCore is set for the jobs of a run with fewer segments than
	// Workers: a job may then use a second goroutine (digestAhead).
	spareCore bool
	// ctx stops the run (PathsContext): set on the copy withDefaults
	// makes, never by a caller.
	ctx context.Context
}

const (
	DefaultTimeTolerance = time.Hour
	DefaultMaxFindings   = 100
	// liveRecheck is how long to wait before looking again at a live
	// writer's segment that showed findings: a frame or footer that was
	// being written while it was read looks damaged for a moment.
	liveRecheck  = 50 * time.Millisecond
	liveRechecks = 3
)

func (o Options) withDefaults() Options {
	if o.TimeTolerance == 0 {
		o.TimeTolerance = DefaultTimeTolerance
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = DefaultMaxFindings
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
