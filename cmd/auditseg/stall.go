package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// errOutputStalled is why a command stopped writing: after a stop signal
// its output was not taken (a consumer alive but not reading, as `less` is
// until scrolled, or a terminal stopped with ^S) for stallGrace, or a
// second signal came.
var errOutputStalled = errors.New("output not read after the interrupt")

// stallGrace is how long after a stop signal a command waits for a
// blocked write to its output to make progress before it gives up on the
// output. Long enough for a slow consumer, which takes a chunk at a
// time; short enough for a service manager's stop (systemd waits 90 s).
const stallGrace = 5 * time.Second

// stallChunk is the most a write to a pipe, socket or terminal passes
// to the kernel at once, so that a consumer's progress shows between
// them: a pipe holds 64 KiB.
const stallChunk = 64 << 10

// stallWriter writes to w from a goroutine of its own, so that tail,
// verify or compress-finished is not held, after a stop signal, by a
// write its consumer never takes: a write(2) to a blocking pipe cannot be
// cancelled, every later signal is caught, and the process would wait
// until the consumer exits (then die of SIGPIPE: tail's cursor not
// stored). Its caller waits for each write; once the output is given
// up the write in flight is left blocked (the process is about to exit),
// and that one and every later write return errOutputStalled, so the
// caller knows which of its writes reached the kernel whole (tail's
// cursor goes to the last record of the last one).
type stallWriter struct {
	w       io.Writer
	chunked bool
	reqs    chan []byte
	res     chan writeResult
	giveUp  chan struct{} // closed: the output is given up
	broken  bool          // the caller's view of giveUp, once seen

	busy     atomic.Bool  // a write is in flight
	progress atomic.Int64 // when the last chunk was taken (UnixNano)
}

type writeResult struct {
	n   int
	err error
}

// newStallWriter starts the writing goroutine, and one that watches for
// stop signals (sigs) until stop is closed: at the first, a write in
// flight that takes no chunk for stallGrace is given up; at the second,
// at once. notice is told, once, when a write blocks for a second after
// the first signal.
func newStallWriter(w io.Writer, sigs []os.Signal, stop <-chan struct{}, notice func()) *stallWriter {
	s := &stallWriter{w: w, reqs: make(chan []byte), res: make(chan writeResult), giveUp: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		// What waits for a reader: a regular file or /dev/null never
		// does, and pieces would cost them system calls for nothing.
		if st, err := f.Stat(); err == nil && (st.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 || isTerminal(f)) {
			s.chunked = true
		}
	}
	go s.run(stop)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	go s.watch(ch, stop, notice)
	return s
}

func (s *stallWriter) run(stop <-chan struct{}) {
	for {
		select {
		case p := <-s.reqs:
			n, err := s.write(p)
			s.busy.Store(false)
			select {
			case s.res <- writeResult{n, err}:
			case <-s.giveUp:
			}
		case <-stop:
			return
		}
	}
}

func (s *stallWriter) write(p []byte) (int, error) {
	if !s.chunked {
		return s.w.Write(p)
	}
	done := 0
	for done < len(p) {
		n, err := s.w.Write(p[done:min(len(p), done+stallChunk)])
		done += n
		s.progress.Store(time.Now().UnixNano())
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// watch gives the output up as newStallWriter says.
func (s *stallWriter) watch(ch chan os.Signal, stop <-chan struct{}, notice func()) {
	defer signal.Stop(ch)
	var tick <-chan time.Time
	var since time.Time // of the first signal
	told := false
	for {
		select {
		case <-stop:
			return
		case <-ch:
			if tick != nil {
				close(s.giveUp) // the second signal
				return
			}
			since = time.Now()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			tick = t.C
		case now := <-tick:
			if !s.busy.Load() {
				continue
			}
			last := time.Unix(0, max(s.progress.Load(), since.UnixNano()))
			if !told && now.Sub(last) >= time.Second {
				told = true
				notice()
			}
			if now.Sub(last) >= stallGrace {
				close(s.giveUp)
				return
			}
		}
	}
}

// Write writes p whole, or returns errOutputStalled once the output is
// given up, with the part of p written in flight unknown (reported as
// 0: the caller must count all of p as not written).
func (s *stallWriter) Write(p []byte) (int, error) {
	if s.broken {
		return 0, errOutputStalled
	}
	select {
	case <-s.giveUp:
		s.broken = true
		return 0, errOutputStalled
	default:
	}
	s.progress.Store(time.Now().UnixNano())
	s.busy.Store(true)
	select {
	case s.reqs <- p:
	case <-s.giveUp:
		s.broken = true
		return 0, errOutputStalled
	}
	select {
	case r := <-s.res:
		return r.n, r.err
	case <-s.giveUp:
		s.broken = true
		return 0, errOutputStalled
	}
}

// stallNotice is what command says when its output blocks after a
// signal.
func stallNotice(stderr io.Writer, command string) func() {
	return func() {
		fmt.Fprintf(stderr, "auditseg %s: interrupted: the output is not being read; giving it up in %s, or at a second interrupt\n", command, stallGrace-time.Second)
	}
}

// stalledError is tail's exit error once it gave up its output: what
// came after last, the last record written in full, may be cut or
// missing (the cursor, if any, was stored at last).
func stalledError(printed bool, last segment.Position) error {
	if !printed {
		return fmt.Errorf("write output: %w: no record was written in full", errOutputStalled)
	}
	return fmt.Errorf("write output: %w: every record up to %s was written in full; what follows it may be cut or missing", errOutputStalled, last)
}
