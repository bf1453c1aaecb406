package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/auditseg/auditseg/pkg/writer"
)

// readGrace is how long a stop waits for a read already under way. A read
// that returns later would take input from the pipe that is then never
// committed; one blocked that long is waiting for input that has not come.
const readGrace = 200 * time.Millisecond

// errAborted ends a pump stopped by a second signal.
var errAborted = errors.New("interrupted twice")

// pumper splits blocks from stdin into records and appends them.
type pumper struct {
	in   *blockReader
	fr   *framer
	w    *writer.Writer
	st   *writeStats
	read int64 // bytes received from in
	// stop is closed by the first signal, abort set by the second: it is
	// checked before every record, which a channel could not be cheaply.
	stop  chan struct{}
	abort atomic.Bool
}

// pump splits blocks from in into records and appends them until EOF, an
// error, or a signal. After a first signal it reads no more, but commits
// every complete record of the blocks already read; an incomplete record
// left at the end is counted in st.dropped. A second signal stops before
// the next record, counting in st.dropped what was read and not committed.
// The first signal is acknowledged on notice (nil: not at all), before the
// second is listened for: the drain can take seconds under --sync always,
// and the operator should know a second signal is wanted to cut it short.
func pump(in *blockReader, fr *framer, w *writer.Writer, st *writeStats, sigs <-chan os.Signal, notice io.Writer) error {
	p := &pumper{in: in, fr: fr, w: w, st: st, stop: make(chan struct{})}
	done, exited := make(chan struct{}), make(chan struct{})
	// The goroutine may be printing the notice when the pump ends: it ends
	// first, so that the command's own lines come after it.
	defer func() { close(done); <-exited }()
	go func() {
		defer close(exited)
		select {
		case <-sigs:
		case <-done:
			return
		}
		// Stop reading at once; the pump may be busy with a block for a
		// while (--sync always), and would let the reader go on.
		in.stopReading()
		close(p.stop)
		if notice != nil {
			fmt.Fprintln(notice, "auditseg write: interrupted: committing the input already read; interrupt again to stop now")
		}
		select {
		case <-sigs:
			p.abort.Store(true)
		case <-done:
		}
	}()
	err := p.run()
	select {
	case <-p.stop:
		st.interrupted = true
	default:
	}
	if errors.Is(err, errAborted) {
		st.aborted = true
		st.dropped = p.read + in.discard(readGrace) - st.inOff
		return nil
	}
	return err
}

func (p *pumper) run() error {
	stop, grace, graceOver := p.stop, (<-chan time.Time)(nil), false
	for {
		var blk block
		var ok bool
		if graceOver {
			// Only blocks already read: a read still blocked gets nothing.
			select {
			case blk, ok = <-p.in.out:
			default:
			}
		} else {
			select {
			case blk, ok = <-p.in.out:
			case <-stop:
				// Reading has stopped. The blocks already read are still
				// committed: their bytes have left stdin.
				stop, grace = nil, time.After(readGrace)
				continue
			case <-grace:
				graceOver = true
				continue
			}
		}
		if !ok {
			// Bytes pending are an incomplete record (no delimiter, or
			// fewer bytes than its prefix says): committing them would
			// invent a record the input never held, and the rest of it,
			// fed to the next run, a second one.
			p.st.dropped = int64(p.fr.pending())
			return nil
		}
		p.read += int64(len(blk.data))
		if blk.err != nil {
			return fmt.Errorf("read stdin at offset %d: %w", p.st.inOff+int64(p.fr.pending()), blk.err)
		}
		if err := p.block(blk.data, blk.eof); err != nil {
			return err
		}
		p.in.recycle(blk)
		if blk.eof {
			return nil
		}
	}
}

// block appends the records of one block read.
func (p *pumper) block(data []byte, eof bool) error {
	return p.fr.feed(data, eof, p.append)
}

// append commits rec, which took n bytes of input.
func (p *pumper) append(rec []byte, n int) error {
	st := p.st
	if p.abort.Load() {
		return errAborted
	}
	pos, err := p.w.Append(rec)
	if err != nil {
		return fmt.Errorf("record %d (input offset %d): %w", st.records+1, st.inOff, err)
	}
	if st.records == 0 {
		st.firstSeq = pos.Seq
	}
	st.records++
	st.bytes += int64(len(rec))
	st.lastSeq = pos.Seq
	st.inOff += int64(n)
	return nil
}
