package main

import (
	"errors"
	"io"
	"sync"
	"time"
)

// blockReader reads its input in large blocks on its own goroutine, so that
// reading stdin and appending overlap; blocks are recycled, so a long run
// allocates nothing per block.
type blockReader struct {
	out      chan block
	free     chan []byte
	quit     chan struct{} // closed: start no new read
	gone     chan struct{} // closed: nobody takes blocks any more
	quitOnce sync.Once
	need     int64 // longest record the splitter may need to see whole
}

type block struct {
	data []byte
	eof  bool
	err  error
	buf  []byte
}

// blockSize is the default size of a read. Three blocks are in hand at
// most: one being appended, two queued.
const blockSize = 1 << 20

func newBlockReader(r io.Reader, need int64, size int) *blockReader {
	br := &blockReader{out: make(chan block, 2), free: make(chan []byte, 3),
		quit: make(chan struct{}), gone: make(chan struct{}), need: need}
	for range 3 {
		br.free <- make([]byte, size)
	}
	go br.run(r)
	return br
}

// run reads blocks until EOF, an error or stopReading. out is closed when
// it returns, so the consumer can tell the last block was delivered.
func (br *blockReader) run(r io.Reader) {
	defer close(br.out)
	for {
		select {
		case <-br.quit: // checked alone first: a select picks at random
			return
		default:
		}
		var buf []byte
		select {
		case buf = <-br.free:
		case <-br.quit:
			return
		}
		n, err := io.ReadAtLeast(r, buf, 1)
		b := block{data: buf[:n], buf: buf}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			b.eof = true
		} else if err != nil {
			b.err = err
		}
		// A block read is delivered even after stopReading: its bytes have
		// left stdin, and the consumer commits every record read.
		select {
		case br.out <- b:
		case <-br.gone:
			return
		}
		if b.eof || b.err != nil {
			return
		}
	}
}

func (br *blockReader) recycle(b block) {
	if b.buf != nil {
		br.free <- b.buf
	}
}

// stopReading asks the reading goroutine to start no new read; the block
// of a read already under way still comes, then out is closed. A read
// blocked on stdin stays blocked until input comes or the process exits.
func (br *blockReader) stopReading() { br.quitOnce.Do(func() { close(br.quit) }) }

// discard drops the blocks read and not yet taken, and returns how many
// bytes they held. It waits for the block of a read under way, once
// stopReading was called, for at most wait: the reading goroutine closes
// out after it, and a read blocked longer than that has taken nothing.
func (br *blockReader) discard(wait time.Duration) int64 {
	var n int64
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case b, ok := <-br.out:
			if !ok {
				return n
			}
			n += int64(len(b.data))
			br.recycle(b)
		case <-t.C:
			return n
		}
	}
}

// stop ends the reading goroutine for good: the consumer takes no more
// blocks.
func (br *blockReader) stop() {
	br.stopReading()
	close(br.gone)
}
