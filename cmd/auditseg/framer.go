package main

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/auditseg/auditseg/pkg/writer"
)

// The framing of `auditseg write`'s input: how a stream of blocks read
// from stdin becomes records. It knows nothing of the log; pump commits
// what it finds.

// splitter finds records in a buffer of input. It returns the record, the
// bytes consumed, and ok=false when buf holds no complete record (at EOF
// the rest of a delimited input is a record). buf[:from] is known to hold
// no delimiter: a record assembled across blocks is looked at again each
// time it grows, and searching it from its start every time made a long
// line cost the square of its length (a 100 MB line took 6 s).
type splitter func(buf []byte, from int, eof bool) (rec []byte, n int, ok bool, err error)

// newSplitter returns the splitter the flags ask for. maxRecord is the
// largest record the writer takes (in segments of segSize bytes): a
// length prefix above it is refused as soon as it is read, not after that
// many bytes.
func newSplitter(f writeFlags, maxRecord, segSize int64) (splitter, error) {
	if f.framing != "" {
		if f.framing != "u32be" {
			return nil, fmt.Errorf("--framing: unknown framing %q (want u32be)", f.framing)
		}
		return func(buf []byte, _ int, eof bool) ([]byte, int, bool, error) {
			if len(buf) >= 4 {
				if n := int64(binary.BigEndian.Uint32(buf)); n > maxRecord {
					return nil, 0, false, fmt.Errorf("length prefix: %w", &writer.TooLargeError{Size: n, Limit: maxRecord, SegmentSize: segSize})
				}
			}
			return splitU32BE(buf, eof)
		}, nil
	}
	var d byte
	switch f.delim {
	case "newline":
		d = '\n'
	case "nul":
		d = 0
	default:
		return nil, fmt.Errorf("--delim: unknown delimiter %q (want newline or nul)", f.delim)
	}
	return func(buf []byte, from int, eof bool) ([]byte, int, bool, error) {
		if i := bytes.IndexByte(buf[from:], d); i >= 0 {
			return buf[:from+i], from + i + 1, true, nil
		}
		if eof && len(buf) > 0 {
			return buf, len(buf), true, nil
		}
		return nil, 0, false, nil
	}, nil
}

func splitU32BE(buf []byte, eof bool) ([]byte, int, bool, error) {
	if len(buf) < 4 {
		if eof && len(buf) > 0 {
			return nil, 0, false, fmt.Errorf("truncated length prefix at end of input (%d bytes)", len(buf))
		}
		return nil, 0, false, nil
	}
	n := int(binary.BigEndian.Uint32(buf))
	if len(buf)-4 < n {
		if eof {
			return nil, 0, false, fmt.Errorf("truncated record at end of input: prefix says %d bytes, %d remain", n, len(buf)-4)
		}
		return nil, 0, false, nil
	}
	return buf[4 : 4+n], 4 + n, true, nil
}

// recordNeed is the largest prefix length a splitter may need to see a whole
// record, so the read buffer never has to grow past it.
func recordNeed(f writeFlags, maxRecord int64) int64 {
	if f.framing != "" {
		return maxRecord + 4
	}
	return maxRecord + 1
}

// framer cuts records out of the blocks of a stream. Records are handed
// on straight from the blocks; only a record that spans two blocks is
// assembled, in carry.
type framer struct {
	split   splitter
	max     int64  // the largest record the writer takes
	segSize int64  // in segments of this size
	need    int64  // the most input one record may take (recordNeed)
	carry   []byte // an incomplete record begun in an earlier block
	off     int64  // input consumed by the records handed on
}

func newFramer(split splitter, maxRecord, segSize, need int64) *framer {
	return &framer{split: split, max: maxRecord, segSize: segSize, need: need}
}

// tooLarge is the error for a record of n bytes (-1: only known to be
// over the limit) at the framer's offset, worded as the writer words it.
func (f *framer) tooLarge(n int64) error {
	return fmt.Errorf("input offset %d: %w", f.off, &writer.TooLargeError{Size: n, Limit: f.max, SegmentSize: f.segSize})
}

// pending is how many bytes of an incomplete record the framer holds.
func (f *framer) pending() int { return len(f.carry) }

// feed hands every complete record of data to emit, with the input bytes
// it took; eof says data is the last block. An error from emit is
// returned as it is; a framing error names the input offset.
func (f *framer) feed(data []byte, eof bool, emit func(rec []byte, n int) error) error {
	// Complete a record begun in an earlier block, growing carry a piece
	// at a time so a long record is not copied over and over.
	for len(f.carry) > 0 && (len(data) > 0 || eof) {
		take := min(len(data), 64<<10)
		had := len(f.carry)
		f.carry = append(f.carry, data[:take]...)
		rec, n, found, err := f.split(f.carry, had, eof && take == len(data))
		if err != nil {
			return fmt.Errorf("input offset %d: %w", f.off, err)
		}
		if found {
			if err := f.emit(emit, rec, n); err != nil {
				return err
			}
			data = data[max(n-had, 0):]
			f.carry = f.carry[:0]
			break
		}
		if int64(len(f.carry)) > f.need {
			return f.tooLarge(-1)
		}
		data = data[take:]
		if len(data) == 0 {
			break
		}
	}
	for len(f.carry) == 0 {
		rec, n, found, err := f.split(data, 0, eof)
		if err != nil {
			return fmt.Errorf("input offset %d: %w", f.off, err)
		}
		if !found {
			f.carry = append(f.carry, data...)
			break
		}
		if err := f.emit(emit, rec, n); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func (f *framer) emit(emit func([]byte, int) error, rec []byte, n int) error {
	// Here rather than in the writer, whose error names the log and a
	// record number where every other framing error names the input
	// offset.
	if int64(len(rec)) > f.max {
		return f.tooLarge(int64(len(rec)))
	}
	if err := emit(rec, n); err != nil {
		return err
	}
	f.off += int64(n)
	return nil
}
