package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

type Position = segment.Position

// ---------- payloads ----------

func payload(id uint64, size int) []byte {
	b := make([]byte, size)
	fill(b, id)
	return b
}

func fill(b []byte, id uint64) {
	k0 := 0
	if len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, id)
		k0 = 8
	}
	x := id*0x9E3779B97F4A7C15 + 1
	for k := k0; k < len(b); k++ {
		b[k] = byte(x >> 56)
		x = x*6364136223846793005 + 1442695040888963407
		if k == k0+64 && len(b) > 4096 { // speed: the rest is cheaper
			for j := k + 1; j < len(b); j++ {
				b[j] = byte(id) ^ byte(j) ^ byte(j>>8)
			}
			return
		}
	}
}

// selfConsistent says whether b is a payload of the id it names (len >= 8).
func selfConsistent(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, true
	}
	id := binary.LittleEndian.Uint64(b)
	want := payload(id, len(b))
	return id, string(want) == string(b)
}

// ---------- the book of what was attempted ----------

type state uint8

const (
	stAcked       state = iota + 1 // returned nil
	stMaybe                        // committed, error returned: may be in the log
	stReserved                     // reserved, not (yet) committed or aborted
	stAborted                      // Abort returned nil: must never appear as data
	stNotCommited                  // Commit/Abort refused: must never appear
)

type entry struct {
	id         uint64
	size       int
	st         state
	beforeKill bool   // acked (child: ack line received) before the kill
	data       []byte // exact bytes, for records first learnt from the log
}

type book struct {
	mu    sync.Mutex
	byPos map[Position]*entry
}

func newBook() *book { return &book{byPos: map[Position]*entry{}} }

func (b *book) note(kind string, p Position, id uint64, size int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.byPos[p]
	switch kind {
	case "A", "M", "R":
		if e != nil && e.st != stAborted && e.st != stNotCommited {
			panic(fmt.Sprintf("position %v handed out twice (%v and id %d)", p, e, id))
		}
		st := map[string]state{"A": stAcked, "M": stMaybe, "R": stReserved}[kind]
		b.byPos[p] = &entry{id: id, size: size, st: st}
	case "C", "CM", "X", "XN", "CN":
		if e == nil {
			panic("commit of unknown reservation " + p.String())
		}
		e.st = map[string]state{"C": stAcked, "CM": stMaybe, "X": stAborted, "XN": stNotCommited, "CN": stNotCommited}[kind]
	default:
		panic(kind)
	}
}

// ---------- session options ----------

type sessOpts struct {
	Seed         uint64
	Dir          string
	SegmentSize  int64
	MaxRecord    int64
	Sync         int // writer.SyncMode
	SyncInterval time.Duration
	Goroutines   int
	Ops          int
	CloseMidAt   time.Duration // 0: no Close from another goroutine
	HoldRes      bool          // hold reservations a little (Gosched/sleep)
	LongHold     bool          // hold some reservations past a short CloseTimeout
	IDBase       uint64
}

func (o sessOpts) writerOpts() writer.Options {
	return writer.Options{SegmentSize: o.SegmentSize, MaxRecordSize: o.MaxRecord, Sync: writer.SyncMode(o.Sync),
		SyncInterval: o.SyncInterval, CloseTimeout: closeTimeout(o)}
}

func closeTimeout(o sessOpts) time.Duration {
	if o.LongHold {
		return 150 * time.Millisecond
	}
	return 3 * time.Second
}

func randOpts(rng *rand.Rand, seed uint64, dir string, race bool) sessOpts {
	o := sessOpts{Seed: seed, Dir: dir}
	switch rng.IntN(4) {
	case 0:
		o.SegmentSize = 64 << 10
	case 1:
		o.SegmentSize = 1 << 20
	default:
		o.SegmentSize = (64<<10 + rng.Int64N((1<<20)-(64<<10)+1)) &^ 7
	}
	mp := segment.MaxPayload(o.SegmentSize)
	switch rng.IntN(4) {
	case 0:
		o.MaxRecord = 0 // default
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
	if race {
		o.Ops /= 2
	}
	if writer.SyncMode(o.Sync) == writer.SyncAlways {
		o.Ops = min(o.Ops, 300)
	}
	if rng.IntN(4) == 0 {
		o.CloseMidAt = time.Duration(rng.IntN(300)) * time.Millisecond
	}
	o.HoldRes = rng.IntN(3) == 0
	if os.Getenv(longHoldEnv) != "" && rng.IntN(3) == 0 {
		o.LongHold = true
		if o.CloseMidAt == 0 {
			o.CloseMidAt = time.Duration(50+rng.IntN(300)) * time.Millisecond
		}
	}
	return o
}

func effMax(o sessOpts) int {
	if o.MaxRecord == 0 {
		return int(segment.DefaultMaxRecord(o.SegmentSize))
	}
	return int(o.MaxRecord)
}

// ---------- the workers ----------

type noter func(kind string, p Position, id uint64, size int)

var errStop = errors.New("stop")

// work runs o.Goroutines goroutines of random operations against w. nextID
// hands out record ids. stop ends them early.
func work(w *writer.Writer, o sessOpts, note noter, nextID *atomic.Uint64, stop *atomic.Bool, bad func(string)) {
	var wg sync.WaitGroup
	maxRec := effMax(o)
	dl := segment.DataLimit(o.SegmentSize)
	if o.CloseMidAt > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(o.CloseMidAt)
			_ = w.Close() // result judged by the session's own Close
		}()
	}
	for g := 0; g < o.Goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, o.IDBase+uint64(g)))
			var last Position
			var nextTail int64 = -1
			var buf []byte
			for i := 0; i < o.Ops && !stop.Load(); i++ {
				size := pickSize(rng, maxRec, dl, nextTail)
				id := nextID.Add(1)
				op := rng.IntN(100)
				var pos Position
				var err error
				switch {
				case op < 55:
					if cap(buf) < size {
						buf = make([]byte, size)
					}
					p := buf[:size]
					fill(p, id)
					pos, err = w.Append(p)
					switch {
					case err == nil:
						note("A", pos, id, size)
					case pos != Position{}:
						note("M", pos, id, size)
					case errors.Is(err, writer.ErrTooLarge):
						if size <= maxRec {
							bad(fmt.Sprintf("Append(%d bytes) refused as too large, limit %d: %v", size, maxRec, err))
						}
					}
				case op < 75 || op < 88:
					var r writer.Reservation
					r, err = w.Reserve(size)
					if err != nil {
						if (r.Position() != Position{}) {
							bad(fmt.Sprintf("Reserve failed with a position: %v", err))
						}
						if errors.Is(err, writer.ErrTooLarge) && size <= maxRec {
							bad(fmt.Sprintf("Reserve(%d) too large, limit %d", size, maxRec))
						}
						break
					}
					pos = r.Position()
					note("R", pos, id, size)
					fill(r.Bytes(), id)
					if o.HoldRes && rng.IntN(8) == 0 {
						if rng.IntN(2) == 0 {
							time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
						} else {
							time.Sleep(0)
						}
					}
					if o.LongHold && rng.IntN(30) == 0 {
						time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
					}
					if op < 75 {
						err = r.Commit()
						switch {
						case err == nil:
							note("C", pos, id, size)
						case strings.Contains(err.Error(), "committed as Close gave up") || errors.Is(err, writer.ErrReservationsOpen):
							note("CM", pos, id, size)
						case errors.Is(err, writer.ErrClosed) || errors.Is(err, writer.ErrReservationDone):
							note("CN", pos, id, size)
						default:
							note("CM", pos, id, size)
						}
					} else {
						err = r.Abort()
						if err == nil {
							note("X", pos, id, size)
						} else {
							note("XN", pos, id, size)
						}
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
				if (pos != Position{}) {
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

func pickSize(rng *rand.Rand, maxRec int, dl, nextTail int64) int {
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
	default:
		if nextTail > 0 {
			// end exactly at the data limit (or 1..7 short, same extent,
			// or one byte over: crossing)
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
}
