package writer

import (
	"sync/atomic"
	"time"
)

// clock gives appenders a timestamp without a system call per record.
// A goroutine refreshes t every precision while records arrive; after a
// quiet spell it stores 0 and sleeps, and the next appender that reads 0
// takes the time itself and wakes it. Reading it costs one atomic load.
type clock struct {
	t     atomic.Int64
	exact bool
	wake  chan struct{}
}

const idleTicks = 1000 // stop refreshing after this many ticks with no records

// minClockTick is the shortest refresh period: below it the clock is read
// for every record instead (Options.TimePrecision). Ticking every 1 µs
// took half a core while records arrived, every 1 ns all of one, for
// timestamps no fresher than a read of the clock (10 µs: 5 %).
const minClockTick = 10 * time.Microsecond

func (c *clock) start(w *Writer, precision time.Duration) {
	if precision < minClockTick {
		c.exact = true
		return
	}
	c.wake = make(chan struct{}, 1)
	c.t.Store(now())
	w.wg.Add(1)
	go c.run(w, precision)
}

func (c *clock) now() int64 {
	if c.exact {
		return now()
	}
	if t := c.t.Load(); t != 0 {
		return t
	}
	t := now()
	if c.t.CompareAndSwap(0, t) {
		kick(c.wake)
	}
	return t
}

func (c *clock) run(w *Writer, precision time.Duration) {
	defer w.wg.Done()
	tick := time.NewTicker(precision)
	defer tick.Stop()
	var lastSeg *seg
	var lastTail int64
	quiet := 0
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		s := w.cur.Load()
		if tail := s.tail.Load(); s != lastSeg || tail != lastTail {
			lastSeg, lastTail, quiet = s, tail, 0
		} else if quiet++; quiet >= idleTicks {
			c.t.Store(0)
			tick.Stop()
			select {
			case <-w.done:
				return
			case <-c.wake:
			}
			quiet = 0
			tick.Reset(precision)
		}
		c.t.Store(now())
	}
}
