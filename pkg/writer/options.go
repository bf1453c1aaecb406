package writer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// SyncMode says when committed records are made durable (msync MS_SYNC of
// the mapped pages, or fsync of a sealed segment; on Linux both also write
// the file metadata needed to read the data back).
//
//	mode      process crash (kill -9)      power loss / kernel crash
//	none      every committed record       records a Sync covered, and what
//	                                       the kernel happened to write back
//	interval  every committed record       all but the last SyncInterval
//	                                       and flush (README, Durability)
//	always    every committed record       every record Append returned for,
//	                                       and every one committed before it
//
// A process crash never loses a committed record in any mode: the stores
// are in the kernel's page cache as soon as they execute. After power loss
// a record that was being written can be torn; readers and verify detect it
// by its CRC. With interval and always, sealing flushes the whole segment
// before the writer moves on, so sealed segments are durable; with none a
// background goroutine writes sealed segments back (no appender waits for
// it; not with KeepCache) and the kernel writes the rest back on its own
// schedule (vm.dirty_expire_centisecs, 30 s by default).
//
// The mode also decides the page size segments are mapped in: a flush
// writes whole pages, and 2 MiB pages are used only where flushes find a
// 2 MiB page or more of new records each (never with always; pages.go).
type SyncMode uint8

const (
	SyncInterval SyncMode = iota // default: flush every SyncInterval
	SyncNone                     // flush only when Sync is called
	SyncAlways                   // Append returns after its record is durable
)

func (m SyncMode) String() string {
	switch m {
	case SyncNone:
		return "none"
	case SyncInterval:
		return "interval"
	case SyncAlways:
		return "always"
	}
	return fmt.Sprintf("SyncMode(%d)", uint8(m))
}

// ParseSyncMode parses "none", "interval" or "always".
func ParseSyncMode(s string) (SyncMode, error) {
	for _, m := range []SyncMode{SyncNone, SyncInterval, SyncAlways} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown sync mode %q (want none, interval or always)", s)
}

// Options configure a Writer. The zero value is valid.
type Options struct {
	// SegmentSize is the size of every new segment file; default 64 MiB.
	// It must be a multiple of 8 between 64 KiB and 1 GiB.
	SegmentSize int64
	// MaxRecordSize is the largest payload Append accepts; default
	// SegmentSize/8 - 24. It may be raised up to segment.MaxPayload.
	MaxRecordSize int64
	// Sync is the durability policy; default SyncInterval.
	Sync SyncMode
	// SyncInterval is the flush period of SyncInterval; 0 means 1 s,
	// anything else must be at least MinSyncInterval.
	SyncInterval time.Duration
	// TimePrecision is how fresh record timestamps are. The default (0)
	// means 1 ms: the background clock refreshes a shared timestamp every
	// millisecond while records arrive (and stops when idle, so the first
	// record after a pause reads the system clock itself). A negative
	// value, or a positive one below 10 µs (a refresh that often costs
	// more than it saves), reads the system clock for every record, which
	// costs ~55 ns per Append on VMs whose clock source is slow
	// (docs/BENCHMARKS.md, machine table). Under CPU saturation
	// the refresh can lag by a scheduler quantum; timestamps are not
	// guaranteed to be monotonic across goroutines. Above MaxTimePrecision
	// (1 s) it is refused.
	TimePrecision time.Duration
	// CloseTimeout bounds how long Close waits without progress for
	// reservations still open (Reserve without Commit or Abort); 0 means
	// 10 s, a negative value is refused. Progress is a frame committed
	// (or aborted) in a segment Close waits to seal, frames behind a
	// reservation still open included (up to a claim whose length is not
	// stored yet: the frames after it cannot be found before it is); a
	// segment sealed; or a seal flushing (a long backlog, or one slow
	// fsync, on a saturated disk). Close waits as long as there is
	// progress, and until the sealer, in a pass begun after Close, has
	// found a frame not committed (hashing a backlog is no reservation
	// open); once there has been no progress for CloseTimeout (checked
	// at most once a millisecond), it returns ErrReservationsOpen and
	// leaves the segment it waited on, and any after it, unsealed
	// (recovery seals them on the next Open). A Commit or Abort after that
	// is refused, and the Reservation's Bytes are cut off from the file
	// (they stay writable, in memory of their own), so nothing written
	// late reaches a segment another writer recovers.
	CloseTimeout time.Duration
	// KeepCache keeps sealed segments in the page cache. By default the
	// writer drops a sealed segment's pages once they are written back (by
	// the seal with SyncInterval and SyncAlways; by a background writeback
	// with SyncNone), just before it populates a new segment, which reuses
	// the memory (recycle.go says why that matters); a reader of recent
	// history then reads from disk. Pages a reader has mapped stay.
	KeepCache bool
	// Logger receives recovery reports and background errors; nil
	// discards them. The writer never prints.
	Logger *slog.Logger
	// FS performs the writer's few file operations; nil uses the
	// operating system. It exists for fault injection and instrumentation.
	FS FS
}

// Sentinel errors; errors from the writer wrap them (and the file name).
var (
	ErrClosed           = errors.New("writer is closed")
	ErrTooLarge         = errors.New("record too large")
	ErrReservationDone  = errors.New("reservation already committed or aborted")
	ErrReservationsOpen = errors.New("reservations still open at close")
	// ErrMaybeLost is a record committed as Close gave up on its segment
	// (Options.CloseTimeout): it may or may not be in the log, where a
	// refused commit (ErrClosed alone) is certainly not. It comes wrapped
	// together with ErrClosed.
	ErrMaybeLost = errors.New("record may not be in the log")
	// ErrFailed wraps a flush or seal failure. It is sticky: after it,
	// every call returns it and no durability is claimed again, because
	// the kernel may have dropped the pages that failed to write.
	ErrFailed = errors.New("writer failed")
	// ErrNotDurable is a record committed under SyncAlways whose flush
	// then failed, or met a Close that gave up or failed: it is in the
	// log (a process crash keeps it) but not known to be durable. It
	// comes wrapped together with the error that ended the flush.
	ErrNotDurable = errors.New("record committed, not known to be durable")
)

// MinSyncInterval is the shortest Options.SyncInterval. A flush of a
// quiet log still costs its flusher a wake-up, a look at the commit words
// and an msync call: at a few microseconds apart they kept a core busy
// while nothing was written (1 ns: 95 % of a core, idle).
const MinSyncInterval = time.Millisecond

// MaxTimePrecision is the largest Options.TimePrecision. Coarser stamps
// save nothing (a refresh a millisecond already costs next to nothing)
// and can be older than the segment that holds them, which verify
// reports beyond its tolerance (1 h by default).
const MaxTimePrecision = time.Second

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize == 0 {
		o.SegmentSize = segment.DefaultSegmentSize
	}
	if err := segment.ValidSize(o.SegmentSize); err != nil {
		return o, err
	}
	if o.MaxRecordSize == 0 {
		o.MaxRecordSize = segment.DefaultMaxRecord(o.SegmentSize)
	}
	if o.MaxRecordSize < 0 || o.MaxRecordSize > segment.MaxPayload(o.SegmentSize) {
		return o, fmt.Errorf("max record size %d out of range (at most %d for %d-byte segments)",
			o.MaxRecordSize, segment.MaxPayload(o.SegmentSize), o.SegmentSize)
	}
	if o.Sync > SyncAlways {
		return o, fmt.Errorf("invalid sync mode %d", o.Sync)
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = time.Second
	}
	if o.SyncInterval < MinSyncInterval {
		return o, fmt.Errorf("sync interval %v: below the minimum of %v (SyncAlways makes each record durable before Append returns)", o.SyncInterval, MinSyncInterval)
	}
	if o.TimePrecision == 0 {
		o.TimePrecision = time.Millisecond
	}
	if o.TimePrecision > MaxTimePrecision {
		return o, fmt.Errorf("time precision %v: above the maximum of %v (records would carry stamps that old)", o.TimePrecision, MaxTimePrecision)
	}
	if o.CloseTimeout < 0 {
		return o, fmt.Errorf("close timeout %v: negative (0 means the default, 10s)", o.CloseTimeout)
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	return o, nil
}
