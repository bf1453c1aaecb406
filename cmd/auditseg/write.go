package main

// auditseg write DIR: stdin to records.
//
// Exit codes: 0 all input committed (also after SIGINT/SIGTERM, which stop
// reading and commit every complete record read); 1 an error while writing (records
// committed before it stay readable); 2 bad flags, or the log could not be
// opened (locked by another writer, missing permissions).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newWriteCmd) }

type writeFlags struct {
	segmentSize, maxRecord string
	sync                   string
	syncInterval           time.Duration
	delim, framing         string
	quiet                  bool
}

func newWriteCmd() *cobra.Command {
	var f writeFlags
	c := &cobra.Command{
		Use:   "write DIR",
		Short: "Append stdin to the log in DIR, one record per line (or NUL / length-prefixed)",
		Long: `Reads stdin to EOF and appends each record to the log in DIR (created if
missing). With --delim newline (default) every line is a record, without
its newline; a last line without a newline is a record too, and empty lines
are empty records. --delim nul splits on NUL bytes. --framing u32be reads
binary records, each prefixed by its length as a 4-byte big-endian integer.

SIGINT or SIGTERM stops reading: every complete record read is committed,
the segment sealed, and the command exits 0. An incomplete last record (a
line without its newline yet) is reported and not committed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWrite(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.segmentSize, "segment-size", "64MiB", "size of each segment file (bytes, or with KiB/MiB/GiB)")
	fl.StringVar(&f.maxRecord, "max-record", "", "largest record accepted (default segment-size/8 - 24)")
	fl.StringVar(&f.sync, "sync", "interval", "durability: none, interval or always")
	fl.DurationVar(&f.syncInterval, "sync-interval", time.Second, "flush period for --sync interval")
	fl.StringVar(&f.delim, "delim", "newline", "record delimiter: newline or nul")
	fl.StringVar(&f.framing, "framing", "", "binary framing instead of a delimiter: u32be")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no summary line on stderr")
	return c
}

func (f writeFlags) options() (writer.Options, error) {
	var o writer.Options
	var err error
	if o.SegmentSize, err = parseSize(f.segmentSize); err != nil {
		return o, fmt.Errorf("--segment-size: %w", err)
	}
	if f.maxRecord != "" {
		if o.MaxRecordSize, err = parseSize(f.maxRecord); err != nil {
			return o, fmt.Errorf("--max-record: %w", err)
		}
		if o.MaxRecordSize == 0 {
			return o, errors.New("--max-record must be positive")
		}
	}
	if o.Sync, err = writer.ParseSyncMode(f.sync); err != nil {
		return o, fmt.Errorf("--sync: %w", err)
	}
	if f.syncInterval <= 0 {
		return o, errors.New("--sync-interval must be positive")
	}
	o.SyncInterval = f.syncInterval
	return o, nil
}

// splitter finds records in a buffer of input. It returns the record, the
// bytes consumed, and ok=false when buf holds no complete record (at EOF
// the rest of a delimited input is a record).
type splitter func(buf []byte, eof bool) (rec []byte, n int, ok bool, err error)

func newSplitter(f writeFlags) (splitter, error) {
	if f.framing != "" {
		if f.framing != "u32be" {
			return nil, fmt.Errorf("--framing: unknown framing %q (want u32be)", f.framing)
		}
		return splitU32BE, nil
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
	return func(buf []byte, eof bool) ([]byte, int, bool, error) {
		if i := bytes.IndexByte(buf, d); i >= 0 {
			return buf[:i], i + 1, true, nil
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

func runWrite(cmd *cobra.Command, dir string, f writeFlags) error {
	opts, err := f.options()
	if err != nil {
		return withCode(exitUsage, err)
	}
	split, err := newSplitter(f)
	if err != nil {
		return withCode(exitUsage, err)
	}
	// Before Open, which can take a while (recovery, the first segment's
	// fsyncs): a signal meanwhile must end the command cleanly too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	w, err := writer.Open(dir, opts)
	if err != nil {
		return withCode(exitUsage, err)
	}
	maxRec := opts.MaxRecordSize
	if maxRec == 0 {
		maxRec = segment.DefaultMaxRecord(opts.SegmentSize)
	}
	start := time.Now()
	st := writeStats{}
	in := newBlockReader(cmd.InOrStdin(), recordNeed(f, maxRec))
	werr := pump(in, split, w, &st, sigs)
	in.stop()
	cerr := w.Close()
	if werr == nil {
		werr = cerr
	}
	if !f.quiet {
		el := time.Since(start)
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: %d records, %s, %d segments, %s, %.0f records/s\n",
			st.records, humanBytes(st.bytes), st.segments(), el.Round(time.Millisecond), float64(st.records)/max(el.Seconds(), 1e-9))
	}
	if st.dropped > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "auditseg write: interrupted: %d bytes of an incomplete record at input offset %d were not committed\n", st.dropped, st.inOff)
	}
	if werr != nil {
		return withCode(exitFailure, werr)
	}
	return nil
}

type writeStats struct {
	records, bytes    int64
	inOff             int64 // input bytes consumed by committed records
	dropped           int64 // bytes of an incomplete record left when a signal stopped reading
	firstSeq, lastSeq uint64
}

func (s *writeStats) segments() uint64 {
	if s.records == 0 {
		return 0
	}
	return s.lastSeq - s.firstSeq + 1
}

// pump splits blocks from in into records and appends them until EOF, an
// error, or a signal (after which an incomplete record in hand is counted
// in st.dropped, not committed).
// Records are appended straight from the read blocks; only a record that
// spans two blocks is assembled in carry.
func pump(in *blockReader, split splitter, w *writer.Writer, st *writeStats, sigs <-chan os.Signal) error {
	var carry []byte
	appendRec := func(rec []byte) error {
		pos, err := w.Append(rec)
		if err != nil {
			return fmt.Errorf("record %d (input offset %d): %w", st.records+1, st.inOff, err)
		}
		if st.records == 0 {
			st.firstSeq = pos.Seq
		}
		st.records++
		st.bytes += int64(len(rec))
		st.lastSeq = pos.Seq
		return nil
	}
	for {
		var blk block
		var ok bool
		select {
		case blk, ok = <-in.out:
		case <-sigs:
			// Stop reading. Bytes in carry are an incomplete record (no
			// delimiter, or fewer bytes than its prefix says): committing
			// them would invent a record the input never held, and the
			// rest of it, fed to the next run, a second one.
			st.dropped = int64(len(carry))
			return nil
		}
		if !ok {
			return nil
		}
		if blk.err != nil {
			return fmt.Errorf("read stdin at offset %d: %w", st.inOff+int64(len(carry)), blk.err)
		}
		data := blk.data
		// Complete a record begun in an earlier block, growing carry a
		// piece at a time so a long record is not copied over and over.
		for len(carry) > 0 && (len(data) > 0 || blk.eof) {
			take := min(len(data), 64<<10)
			had := len(carry)
			carry = append(carry, data[:take]...)
			rec, n, found, err := split(carry, blk.eof && take == len(data))
			if err != nil {
				return fmt.Errorf("input offset %d: %w", st.inOff, err)
			}
			if found {
				if err := appendRec(rec); err != nil {
					return err
				}
				st.inOff += int64(n)
				data = data[max(n-had, 0):]
				carry = carry[:0]
				break
			}
			if int64(len(carry)) > in.need {
				return fmt.Errorf("input offset %d: record longer than the limit of %d bytes (--max-record)", st.inOff, in.need-1)
			}
			data = data[take:]
			if len(data) == 0 {
				break
			}
		}
		for len(carry) == 0 {
			rec, n, found, err := split(data, blk.eof)
			if err != nil {
				return fmt.Errorf("input offset %d: %w", st.inOff, err)
			}
			if !found {
				carry = append(carry, data...)
				break
			}
			if err := appendRec(rec); err != nil {
				return err
			}
			st.inOff += int64(n)
			data = data[n:]
		}
		in.recycle(blk)
		if blk.eof {
			return nil
		}
	}
}
