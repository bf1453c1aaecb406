package crashtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// The soak's payloads carry no header (unlike RecordID's): sizes are picked
// down to the byte, including 0 and the exact fit at a segment's end, so a
// payload is its id (when it has 8 bytes for it) and bytes derived from the
// id and the length; the book knows the rest by position.
func soakPayload(id uint64, size int) []byte {
	b := make([]byte, size)
	soakFill(b, id)
	return b
}

func soakFill(b []byte, id uint64) {
	k0 := 0
	if len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, id)
		k0 = 8
	}
	x := id*0x9E3779B97F4A7C15 + 1
	for k := k0; k < len(b); k++ {
		b[k] = byte(x >> 56)
		x = x*6364136223846793005 + 1442695040888963407
		if k == k0+64 && len(b) > 4096 {
			// Records near a megabyte: a cheaper pattern keeps the race
			// build's run time on the writer, not on filling buffers.
			for j := k + 1; j < len(b); j++ {
				b[j] = byte(id) ^ byte(j) ^ byte(j>>8)
			}
			return
		}
	}
}

// soakOwnPayload says whether b is the payload its leading id names, so a
// record the book never heard of (acknowledged by a child as it was
// killed) is still checked byte for byte.
func soakOwnPayload(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, true
	}
	id := binary.LittleEndian.Uint64(b)
	return id, string(soakPayload(id, len(b))) == string(b)
}

// What a worker tells the book, in process or as the Kind of a Msg from the
// soak child (G carries the size, I the id). A, M and V hand out a new
// position; the others settle a reservation.
const (
	soakAppended     = MsgAck // Append returned nil
	soakMaybe        = 'M'    // Append failed but named a position: may be in the log
	soakReserved     = 'V'    // Reserve returned
	soakCommitted    = 'C'    // Commit returned nil
	soakCommitMaybe  = 'W'    // Commit failed in a way that may have left the record
	soakAborted      = 'X'    // Abort returned nil: never data
	soakRefused      = 'N'    // Commit or Abort refused: never data
	soakBad          = 'B'    // the child saw a broken promise; details on its stderr
	soakKindsWithPos = "AMV"
)

type soakState uint8

const (
	stAcked soakState = iota + 1
	stMaybe
	stReserved
	stAborted
	stRefused
)

var soakStateOf = map[byte]soakState{
	soakAppended: stAcked, soakMaybe: stMaybe, soakReserved: stReserved,
	soakCommitted: stAcked, soakCommitMaybe: stMaybe, soakAborted: stAborted, soakRefused: stRefused,
}

type soakEntry struct {
	id   uint64
	size int
	st   soakState
	data []byte // exact bytes, for a record first learnt from the log
}

// soakBook is what the writers promised, by position, across the sessions
// of one seed.
type soakBook struct {
	mu    sync.Mutex
	byPos map[segment.Position]*soakEntry
}

func newSoakBook() *soakBook { return &soakBook{byPos: map[segment.Position]*soakEntry{}} }

// note records one report; it returns what is wrong with it, or "".
func (b *soakBook) note(kind byte, p segment.Position, id uint64, size int) string {
	st, ok := soakStateOf[kind]
	if !ok {
		return fmt.Sprintf("unknown report %q at %v", kind, p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byPos[p]
	if strings.IndexByte(soakKindsWithPos, kind) >= 0 {
		if e != nil && e.st != stAborted && e.st != stRefused {
			return fmt.Sprintf("position %v handed out twice (ids %d and %d)", p, e.id, id)
		}
		b.byPos[p] = &soakEntry{id: id, size: size, st: st}
		return ""
	}
	if e == nil {
		return fmt.Sprintf("reservation at %v settled (%c) but never handed out", p, kind)
	}
	e.st = st
	return ""
}

// soakOpts is one session's writer and workload; the soak child gets it as
// JSON.
type soakOpts struct {
	Seed         uint64
	Dir          string
	SegmentSize  int64
	MaxRecord    int64
	Sync         int // writer.SyncMode
	SyncInterval time.Duration
	Goroutines   int
	Ops          int
	CloseMidAt   time.Duration // a Close from another goroutine, racing the workers (0: none)
	HoldRes      bool          // sometimes hold a reservation a little
	LongHold     bool          // hold some past a short CloseTimeout (long mode)
	IDBase       uint64
	Budget       int64 // payload bytes the session may write: bounds the checks' reading time
}

// soakCounters are shared by a session's workers (and, in the child, by
// its successive rounds of work).
type soakCounters struct {
	nextID atomic.Uint64 // record ids
	spent  atomic.Int64  // payload bytes, against Budget
	stop   atomic.Bool
}

func (o soakOpts) writerOpts() writer.Options {
	ct := 3 * time.Second
	if o.LongHold {
		ct = 150 * time.Millisecond
	}
	return writer.Options{SegmentSize: o.SegmentSize, MaxRecordSize: o.MaxRecord, Sync: writer.SyncMode(o.Sync),
		SyncInterval: o.SyncInterval, CloseTimeout: ct}
}

func randSoakOpts(rng *rand.Rand, seed uint64, dir string, long bool) soakOpts {
	o := soakOpts{Seed: seed, Dir: dir}
	kinds := 4
	if long {
		kinds = 5 // and segments in 2 MiB pages populated in pieces (pkg/writer/pages.go)
	}
	switch rng.IntN(kinds) {
	case 0:
		o.SegmentSize = 64 << 10
	case 1:
		o.SegmentSize = 1 << 20
	case 4:
		o.SegmentSize = 8 << 20
	default:
		o.SegmentSize = (64<<10 + rng.Int64N((1<<20)-(64<<10)+1)) &^ 7
	}
	mp := segment.MaxPayload(o.SegmentSize)
	switch rng.IntN(4) {
	case 0:
		o.MaxRecord = 0 // the writer's default
	case 1:
		o.MaxRecord = mp
	case 2:
		o.MaxRecord = 1 + rng.Int64N(mp)
	default:
		o.MaxRecord = rng.Int64N(512)
	}
	o.Sync = rng.IntN(3)
	o.SyncInterval = time.Duration(1+rng.IntN(20)) * time.Millisecond
	o.Goroutines = 1 + rng.IntN(8)
	o.Ops = 100 + rng.IntN(1500)
	// Each check reads the whole log, several times after a kill, and
	// under -race a reader or verify pass costs about a second per few
	// MiB: the default run must stay short on 2 cores.
	o.Budget = 64 << 20
	if !long {
		o.Ops /= 4
		o.Budget = 6 << 20
	}
	if writer.SyncMode(o.Sync) == writer.SyncAlways {
		o.Ops = min(o.Ops, 300)
	}
	if rng.IntN(4) == 0 {
		o.CloseMidAt = time.Duration(rng.IntN(300)) * time.Millisecond
	}
	o.HoldRes = rng.IntN(3) == 0
	if long && rng.IntN(3) == 0 {
		o.LongHold = true
		if o.CloseMidAt == 0 {
			o.CloseMidAt = time.Duration(50+rng.IntN(300)) * time.Millisecond
		}
	}
	return o
}

func (o soakOpts) maxRecord() int {
	if o.MaxRecord == 0 {
		return int(segment.DefaultMaxRecord(o.SegmentSize))
	}
	return int(o.MaxRecord)
}

// soakWork runs o.Goroutines goroutines of random Append, Reserve+Commit,
// Reserve+Abort and Sync against w, reporting each outcome to note and
// each broken promise to bad, until each has done o.Ops operations, the
// budget is spent, or ctr.stop is set.
func soakWork(w *writer.Writer, o soakOpts, note func(kind byte, p segment.Position, id uint64, size int), ctr *soakCounters, bad func(string)) {
	var wg sync.WaitGroup
	maxRec := o.maxRecord()
	dl := segment.DataLimit(o.SegmentSize)
	if o.CloseMidAt > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(o.CloseMidAt)
			_ = w.Close() // its result is judged by the session's own Close
		}()
	}
	for g := range o.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, o.IDBase+uint64(g)))
			var last segment.Position
			var nextTail int64 = -1
			var buf []byte
			for i := 0; i < o.Ops && !ctr.stop.Load(); i++ {
				size := soakSize(rng, maxRec, dl, nextTail)
				if ctr.spent.Add(int64(size)) > o.Budget {
					return
				}
				id := ctr.nextID.Add(1)
				op := rng.IntN(100)
				var pos segment.Position
				var err error
				switch {
				case op < 55:
					if cap(buf) < size {
						buf = make([]byte, size)
					}
					soakFill(buf[:size], id)
					pos, err = w.Append(buf[:size])
					switch {
					case err == nil:
						note(soakAppended, pos, id, size)
					case pos != segment.Position{}:
						note(soakMaybe, pos, id, size)
					case errors.Is(err, writer.ErrTooLarge) && size <= maxRec:
						bad(fmt.Sprintf("Append(%d bytes) refused as too large, limit %d: %v", size, maxRec, err))
					}
				case op < 88:
					var r writer.Reservation
					if r, err = w.Reserve(size); err != nil {
						if (r.Position() != segment.Position{}) {
							bad(fmt.Sprintf("Reserve failed with a position: %v", err))
						}
						if errors.Is(err, writer.ErrTooLarge) && size <= maxRec {
							bad(fmt.Sprintf("Reserve(%d) refused as too large, limit %d", size, maxRec))
						}
						break
					}
					pos = r.Position()
					note(soakReserved, pos, id, size)
					soakFill(r.Bytes(), id)
					if o.HoldRes && rng.IntN(8) == 0 {
						time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
					}
					if o.LongHold && rng.IntN(30) == 0 {
						time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
					}
					if op < 75 {
						err = r.Commit()
						note(commitOutcome(err), pos, id, size)
					} else if err = r.Abort(); err == nil {
						note(soakAborted, pos, id, size)
					} else {
						note(soakRefused, pos, id, size)
					}
				default:
					err = w.Sync()
				}
				if err != nil {
					if errors.Is(err, writer.ErrClosed) || errors.Is(err, writer.ErrReservationsOpen) {
						return
					}
					if !errors.Is(err, writer.ErrTooLarge) {
						bad(fmt.Sprintf("goroutine %d op %d: unexpected error: %v", g, i, err))
						return
					}
					continue
				}
				if (pos != segment.Position{}) {
					if pos.Compare(last) <= 0 {
						bad(fmt.Sprintf("goroutine %d: position %v not after its previous %v", g, pos, last))
					}
					last = pos
					nextTail = pos.Offset + segment.FrameSize(size)
				}
			}
		}()
	}
	wg.Wait()
}

// commitOutcome classifies Commit's error. A commit that met a segment
// Close had given up on wraps ErrClosed, like a refused one, but may be in
// the log: it wraps ErrMaybeLost too. Under SyncAlways a record it did
// commit whose flush then failed, or met Close, wraps ErrNotDurable.
func commitOutcome(err error) byte {
	switch {
	case err == nil:
		return soakCommitted
	case errors.Is(err, writer.ErrMaybeLost) || errors.Is(err, writer.ErrNotDurable):
		return soakCommitMaybe
	case errors.Is(err, writer.ErrClosed) || errors.Is(err, writer.ErrReservationDone):
		return soakRefused
	default:
		return soakCommitMaybe
	}
}

// soakSize picks a payload size: mostly small, some up to the limit, some
// empty, and some that end exactly at the segment's data limit (or a few
// bytes short, same extent, or one over, which must rotate).
func soakSize(rng *rand.Rand, maxRec int, dl, nextTail int64) int {
	r := rng.IntN(100)
	switch {
	case r < 40:
		return rng.IntN(min(maxRec, 64) + 1)
	case r < 65:
		return rng.IntN(min(maxRec, 2048) + 1)
	case r < 75:
		return rng.IntN(maxRec + 1)
	case r < 82:
		return maxRec
	case r < 85:
		return 0
	}
	if nextTail > 0 {
		n := int(dl-nextTail) - segment.FrameHeaderSize
		switch rng.IntN(4) {
		case 1:
			n -= rng.IntN(8)
		case 2:
			n++
		}
		if n >= 0 && n <= maxRec {
			return n
		}
	}
	return rng.IntN(min(maxRec, 300) + 1)
}
