package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// An archive's summary is a copy of its segment's header and footer kept
// after the compressed frame, in a zstd skippable frame (RFC 8878 section
// 3.1.2, which every zstd decoder, `zstd -d` included, passes over), so
// that a reader looking for a time or counting records from the end reads
// a few hundred bytes instead of decompressing 64 MiB (ReadFooter). It is
// a convenience, never the truth: the compressed segment is. Archives
// without one (older ones) are read by decompressing; verify checks that a
// summary present matches the segment (Image.CheckSummary).
//
//	offset  size  field
//	0       4     skippable frame magic 0x184D2A5A, little-endian
//	4       4     frame size: 204, little-endian
//	8       8     "ASEGSUMM"
//	16      64    the segment's header, as in the file
//	80      128   the segment's footer, as in the file
//	208     4     CRC32C (Castagnoli) of bytes 8..208
//
// The same table is in docs/FORMAT.md, section 10. These constants are
// part of the on-disk format and must never change.
const (
	summaryMagic uint32 = 0x184D2A5A
	summaryTag          = "ASEGSUMM"
	// SummaryFrameSize is how many bytes AppendSummary appends.
	SummaryFrameSize = 8 + 8 + HeaderSize + FooterSize + 4
)

// errNoSummary: the archive ends without a summary frame.
var errNoSummary = errors.New("archive has no summary")

// AppendSummary appends the summary frame of segment image img (a sealed
// segment file's bytes) to dst, the compressed archive.
func AppendSummary(dst, img []byte) []byte {
	var b [SummaryFrameSize]byte
	le.PutUint32(b[0:], summaryMagic)
	le.PutUint32(b[4:], SummaryFrameSize-8)
	copy(b[8:], summaryTag)
	copy(b[16:], img[:HeaderSize])
	copy(b[16+HeaderSize:], img[len(img)-FooterSize:])
	le.PutUint32(b[SummaryFrameSize-4:], crc32.Checksum(b[8:SummaryFrameSize-4], castagnoli))
	return append(dst, b[:]...)
}

// ReadSummary returns the header and footer the summary of the archive at
// path holds, reading only its last SummaryFrameSize bytes, whatever its
// content holds. errNoSummary means it has none; a summary that is there
// but damaged gives an error wrapping ErrCorrupt, its footer's copy all
// zeros or without its magic included (a summary is written whole, for a
// sealed segment only).
func ReadSummary(path string) (Header, Footer, error) {
	return ReadSummaryContext(context.Background(), path)
}

// ReadSummaryContext is ReadSummary whose wait for a lease's break ends
// when ctx is done (OpenNoFollowContext).
func ReadSummaryContext(ctx context.Context, path string) (Header, Footer, error) {
	h, ft, _, err := ReadSummarySize(ctx, path)
	return h, ft, err
}

// ReadSummarySize is ReadSummaryContext that also returns the archive's
// size in bytes, from the same open (verify --quick reports it without a
// second look at the name, which could be another file by then).
func ReadSummarySize(ctx context.Context, path string) (Header, Footer, int64, error) {
	b, at, err := readSummaryFrame(ctx, path)
	if err != nil {
		return Header{}, Footer{}, 0, err
	}
	h, ft, err := decodeSummary(b[:])
	return h, ft, at + SummaryFrameSize, summaryError(path, at, err)
}

// readSummaryFrame reads the last SummaryFrameSize bytes of the archive at
// path and where they start; errNoSummary if it is shorter. ctx ends the
// open's wait for a lease's break.
func readSummaryFrame(ctx context.Context, path string) (b [SummaryFrameSize]byte, at int64, err error) {
	f, st, err := openRegularFile(ctx, path, maxArchiveSize(MaxSegmentSize))
	if err != nil {
		return b, 0, err
	}
	defer f.Close()
	at = st.Size() - SummaryFrameSize
	if at < 0 {
		return b, 0, errNoSummary
	}
	if err := ReadAt(f, path, "read", b[:], at); err != nil {
		return b, 0, err
	}
	return b, at, nil
}

// decodeSummary parses a summary frame. Damage is a *CorruptError whose
// offset is in the frame b (summaryError places it in the archive).
func decodeSummary(b []byte) (Header, Footer, error) {
	if le.Uint32(b[0:]) != summaryMagic || le.Uint32(b[4:]) != SummaryFrameSize-8 {
		return Header{}, Footer{}, errNoSummary
	}
	if string(b[8:16]) != summaryTag {
		// Our frame's magic and size: a damaged tag, not someone else's.
		return Header{}, Footer{}, corrupt(8, "bad summary tag %q", b[8:16])
	}
	if got, want := le.Uint32(b[SummaryFrameSize-4:]), crc32.Checksum(b[8:SummaryFrameSize-4], castagnoli); got != want {
		return Header{}, Footer{}, corrupt(SummaryFrameSize-4, "checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	// The copies' errors give offsets in the segment file: moved to
	// where the copies are in b.
	h, err := DecodeHeader(b[16 : 16+HeaderSize])
	if err != nil {
		return Header{}, Footer{}, movedBy(err, 16)
	}
	ft, err := decodeWholeFooter(b[16+HeaderSize:], h)
	if errors.Is(err, ErrNoFooter) {
		// Only a sealed segment is ever archived, and its summary written
		// whole: a footer copy of zeros is damage, never "not sealed",
		// which callers would take for the answer without decompressing
		// (recovery chaining the next segment from zeros).
		err = corrupt(h.Size-FooterSize, "the footer's copy is all zeros (only a sealed segment is archived)")
	}
	return h, ft, movedBy(err, 16+HeaderSize-(h.Size-FooterSize))
}

// movedBy is err with its offset moved by d when it is a *CorruptError;
// other errors (nil, ErrNoFooter) unchanged.
func movedBy(err error, d int64) error {
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	c := *ce
	c.Offset += d
	return &c
}

// summaryError is err, from decodeSummary of the summary frame at offset
// at of the archive at path, naming the archive and the offset in it of
// the damage, and saying it is in the summary; errNoSummary and
// ErrNoFooter unchanged.
func summaryError(path string, at int64, err error) error {
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return err
	}
	return &CorruptError{Path: path, Offset: at + ce.Offset, Reason: "archive summary: " + ce.Reason}
}

// CheckSummary reports whether an archived image's summary, if it has
// one, is a copy of its header and footer. nil for a mapped segment file
// and for an archive without a summary.
func (im *Image) CheckSummary() error {
	if !im.Archived || len(im.Data) < HeaderSize+FooterSize {
		return nil
	}
	b, at, err := readSummaryFrame(context.Background(), im.Path)
	if errors.Is(err, errNoSummary) {
		return nil
	}
	if err != nil {
		return err
	}
	var foot []byte
	if im.lost == 0 {
		// A salvaged archive's footer was lost with its last blocks: the
		// summary holds the only copy, there is nothing to compare it with.
		foot = im.Data[len(im.Data)-FooterSize:]
	}
	return matchSummary(im.Path, at, b[:], im.Data[:HeaderSize], foot)
}

// matchSummary checks b, the last SummaryFrameSize bytes of the archive at
// path (from offset at), against the segment's header and footer: nil if
// b is a summary frame holding a copy of them, or no summary frame at all
// (older archives have none); a nil foot is not compared. One that is
// damaged or belongs to another segment is a *CorruptError.
func matchSummary(path string, at int64, b, hdr, foot []byte) error {
	_, _, err := decodeSummary(b)
	switch {
	case errors.Is(err, errNoSummary):
		return nil
	case err != nil:
		return summaryError(path, at, err)
	case !bytes.Equal(b[16:16+HeaderSize], hdr) || foot != nil && !bytes.Equal(b[16+HeaderSize:SummaryFrameSize-4], foot):
		return &CorruptError{Path: path, Offset: at, Reason: "archive summary does not match the segment's header and footer"}
	}
	return nil
}

// ReadFooter returns the footer of the sealed segment file or archive at
// path, as cheaply as it can: a .seg file's header and footer are read (no
// mapping), an archive's summary, else (no summary, or a damaged one) the
// archive is decompressed (into memory, not mapped: nothing faults).
// ErrNoFooter means the segment is not sealed; any other error, that it
// cannot be read or is damaged (read it whole to know more). An archive
// whose summary and content both fail gives the content's error, the
// summary's damage added to it.
func ReadFooter(path string) (Footer, error) {
	return ReadFooterContext(context.Background(), path)
}

// ReadFooterContext is ReadFooter whose wait for a lease's break ends
// when ctx is done (OpenNoFollowContext).
func ReadFooterContext(ctx context.Context, path string) (Footer, error) {
	if IsArchiveName(filepath.Base(path)) {
		_, ft, err := ReadSummaryContext(ctx, path)
		if err == nil || !errors.Is(err, errNoSummary) && !errors.Is(err, ErrCorrupt) {
			return ft, err
		}
		// The summary is a copy, never the truth: a damaged one costs a
		// decompression, not the footer (as in ReadHeader). Callers that
		// took its damage for the answer decided wrongly about a segment
		// whose content says otherwise (where --since starts, the digest
		// recovery chains from).
		ft, cerr := contentFooter(ctx, path)
		var ce *CorruptError
		if cerr != nil && errors.As(err, &ce) {
			// The file named once, first (cerr's).
			return Footer{}, fmt.Errorf("%w (and at offset %d: %s)", cerr, ce.Offset, ce.Reason)
		}
		return ft, cerr
	}
	f, err := OpenFileContext(ctx, path)
	if err != nil {
		return Footer{}, err
	}
	defer f.Close()
	return f.Footer()
}

// SealedFooter returns the footer of the segment file or archive at path
// if the segment counts as sealed: an archive whose summary or content
// gives a footer, or a segment file with a valid footer and a header
// recovery accepts (valid, agreeing with the file's size and name). It is
// ReadFooter, and also refuses a footer whose sequence number is not the
// file name's (ErrCorrupt): a copy of another segment, which recovery
// does not chain to (FORMAT.md section 8, steps 2 and 3.1). Recovery
// finds the newest sealed segment with it, and verify the end of the
// sealed part of a log, so the two agree on which segments a dead
// writer left unsealed.
func SealedFooter(path string) (Footer, error) {
	return SealedFooterContext(context.Background(), path)
}

// SealedFooterContext is SealedFooter whose wait for a lease's break ends
// when ctx is done (OpenNoFollowContext).
func SealedFooterContext(ctx context.Context, path string) (Footer, error) {
	f, err := ReadFooterContext(ctx, path)
	if err == nil {
		err = nameMismatch(path, f.Seq)
	}
	return f, err
}

// contentFooter is the footer an archive's content holds, whatever its
// summary says (the summary is a copy).
func contentFooter(ctx context.Context, path string) (Footer, error) {
	im, err := OpenImageContext(ctx, path)
	if err != nil {
		return Footer{}, err
	}
	defer im.Close()
	return im.Footer()
}

// ReadHeader returns the header of the segment file or archive at path,
// as cheaply as it can: a .seg file's first HeaderSize bytes, an archive's
// summary, else (no summary, or a damaged one) the start of the archive
// decompressed. Errors name the file; a damaged header wraps ErrCorrupt,
// as does an archive whose summary and content both fail.
func ReadHeader(path string) (Header, error) {
	return ReadHeaderContext(context.Background(), path)
}

// ReadHeaderContext is ReadHeader whose wait for a lease's break ends
// when ctx is done (OpenNoFollowContext).
func ReadHeaderContext(ctx context.Context, path string) (Header, error) {
	if IsArchiveName(filepath.Base(path)) {
		b, at, err := readSummaryFrame(ctx, path)
		if err != nil && !errors.Is(err, errNoSummary) {
			return Header{}, err
		}
		serr := errNoSummary
		if err == nil {
			var h Header
			if h, _, serr = decodeSummary(b[:]); serr == nil {
				return h, nil
			}
		}
		// The summary is a copy, never the truth: a damaged one costs
		// a decompression, not the header.
		h, err := readArchiveHeader(ctx, path)
		var ce *CorruptError
		if err != nil && errors.As(summaryError(path, at, serr), &ce) {
			// The file named once, first (err's).
			return Header{}, fmt.Errorf("%w (and at offset %d: %s)", err, ce.Offset, ce.Reason)
		}
		return h, err
	}
	f, _, err := openSegmentFile(ctx, path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return readFileHeader(f, path)
}

// ReadFirstFrame returns the header of the segment file at path and its
// first frame slot, decoded against the header's sequence number by the
// shared decoder (every check of a committed frame, its CRC included):
// Unwritten when nothing was claimed there, Reserved for a claim,
// Committed, or Torn (damage, or frames written for another sequence
// number than the header's). It reads with pread and maps nothing: a
// follower probes the files after its segment this way when that
// segment ends in zeros, and a frame is not worth mapping a segment for
// (docs/FORMAT.md section 7). A DATA frame's Payload is not returned:
// its CRC is computed over the file read in chunks of a fixed size, as a
// follower repeats the probe at every poll while it waits (a copy of
// another segment there never counts) and the frame may be as large as
// a record, so no length read from the file decides an allocation.
// Bytes past the end of a short file read as zero. Errors name the file;
// a damaged header wraps ErrCorrupt.
func ReadFirstFrame(path string) (Header, Frame, error) {
	return ReadFirstFrameContext(context.Background(), path)
}

// ReadFirstFrameContext is ReadFirstFrame whose wait for a lease's break
// ends when ctx is done (OpenNoFollowContext).
func ReadFirstFrameContext(ctx context.Context, path string) (Header, Frame, error) {
	f, _, err := openSegmentFile(ctx, path)
	if err != nil {
		return Header{}, Frame{}, err
	}
	defer f.Close()
	b := make([]byte, HeaderSize+FrameHeaderSize) // aligned, for LoadLength
	if err := readPadded(f, path, b, 0); err != nil {
		return Header{}, Frame{}, err
	}
	h, err := DecodeHeader(b[:HeaderSize])
	if err != nil {
		return Header{}, Frame{}, WithPath(err, path)
	}
	var fr Frame
	seed := FrameSeed(h.Seq)
	if decodeFrameIn(&fr, b, 0, h.Size, seed, HeaderSize) {
		return h, fr, nil
	}
	// A DATA frame reaching past the bytes read, which passed every other
	// check of the decoder's (its length is in bounds): only the CRC is
	// left, over the rest of the frame.
	hd := b[HeaderSize:]
	fr = Frame{Offset: HeaderSize, Length: LoadLength(hd, 0), Type: TypeData,
		Time: int64(le.Uint64(hd[16:])), CRC: le.Uint32(hd[4:])}
	crc := FrameCRC(seed, HeaderSize, hd[8:])
	end := HeaderSize + int64(fr.Length)
	chunk := make([]byte, min(32<<10, end-int64(len(b))))
	for off := int64(len(b)); off < end; {
		c := chunk[:min(int64(len(chunk)), end-off)]
		if err := readPadded(f, path, c, off); err != nil {
			return Header{}, Frame{}, err
		}
		crc = crc32.Update(crc, castagnoli, c)
		off += int64(len(c))
	}
	if crc != fr.CRC {
		fr.badCRC(HeaderSize, crc)
		return h, fr, nil
	}
	fr.State, fr.Extent = Committed, Align(int64(fr.Length))
	return h, fr, nil
}

// readPadded fills b from offset off of f, the bytes past its end as
// zero.
func readPadded(f *os.File, path string, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return readError(path, off+int64(n), err)
	}
	clear(b[n:])
	return nil
}

// HasRecordBytes reports whether the record area of the segment file at
// path holds any non-zero byte, reading it with pread a chunk at a time
// (a mapping could set the page size of a file a writer may yet fill:
// FORMAT.md section 7) and dropping the clean pages it read. A follower
// whose writer is gone asks this of the files after an unfinished
// segment: their first commit word can be zero (a claim never stored)
// with committed frames behind it. Errors name the file.
func HasRecordBytes(path string) (bool, error) {
	return HasRecordBytesContext(context.Background(), path)
}

// HasRecordBytesContext is HasRecordBytes whose wait for a lease's break
// ends when ctx is done (OpenNoFollowContext).
func HasRecordBytesContext(ctx context.Context, path string) (bool, error) {
	f, st, err := openSegmentFile(ctx, path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	end := RecordLimit(st.Size())
	buf := make([]byte, min(1<<20, max(end-HeaderSize, 0)))
	found := false
	for off := int64(HeaderSize); off < end && !found; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), end-off)]
		n, err := f.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, readError(path, off+int64(n), err)
		}
		found = ZeroFrom(b[:n], 0, int64(n)) < int64(n)
		if n < len(b) {
			break
		}
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // only a hint
	return found, nil
}

// readFileHeader reads and decodes the header of the segment file f.
func readFileHeader(f *os.File, path string) (Header, error) {
	var hb [HeaderSize]byte
	if err := readPadded(f, path, hb[:], 0); err != nil {
		return Header{}, err
	}
	h, err := DecodeHeader(hb[:])
	return h, WithPath(err, path)
}
