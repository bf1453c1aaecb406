package main

import (
	"errors"
	"io"
)

// blockReader reads its input in large blocks on its own goroutine, so that
// reading stdin and appending overlap; blocks are recycled, so a long run
// allocates nothing per block.
type blockReader struct {
	out  chan block
	free chan []byte
	quit chan struct{}
	need int64 // longest record the splitter may need to see whole
}

type block struct {
	data []byte
	eof  bool
	err  error
	buf  []byte
}

const blockSize = 1 << 20

func newBlockReader(r io.Reader, need int64) *blockReader {
	br := &blockReader{out: make(chan block, 2), free: make(chan []byte, 3), quit: make(chan struct{}), need: need}
	for range 3 {
		br.free <- make([]byte, blockSize)
	}
	go br.run(r)
	return br
}

func (br *blockReader) run(r io.Reader) {
	defer close(br.out)
	for {
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
		select {
		case br.out <- b:
		case <-br.quit:
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

// stop ends the reading goroutine; a read blocked on stdin stays blocked
// until the process exits, which is what a signal-driven stop wants.
func (br *blockReader) stop() { close(br.quit) }
