package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestArchiveSummary: an archive with a summary decompresses to the
// segment (zstd skips the summary's frame), ReadFooter answers from the
// summary alone (it still does with the compressed frame destroyed) and
// from the two ends of a .seg file, falls back to decompressing an archive
// without one or with a damaged one, and CheckSummary tells a summary that
// matches from one that does not.
func TestArchiveSummary(t *testing.T) {
	dir := t.TempDir()
	orig, want := sealedFile(t, dir, 3, 20)
	if got, err := segment.ReadFooter(filepath.Join(dir, segment.FileName(3))); err != nil || got != want {
		t.Fatalf(".seg file: ReadFooter %+v, %v; want %+v", got, err, want)
	}

	arch := segment.AppendSummary(compress(t, orig), orig)
	p := writeFile(t, filepath.Join(dir, segment.ArchiveName(3)), arch)
	if b, err := segment.ReadArchive(p); err != nil || string(b) != string(orig) {
		t.Fatalf("ReadArchive with a summary: %v", err)
	}
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Fatalf("ReadFooter %+v, %v; want %+v", got, err, want)
	}
	im := imageOf(t, p)
	if err := im.CheckSummary(); err != nil {
		t.Fatalf("CheckSummary of a good archive: %v", err)
	}
	im.Close()

	// The compressed frame destroyed: the summary alone still answers.
	broken := append([]byte{}, arch...)
	for i := 8; i < len(broken)-segment.SummaryFrameSize; i++ {
		broken[i] = 0xAA
	}
	writeFile(t, p, broken)
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Fatalf("ReadFooter read more than the summary: %+v, %v", got, err)
	}

	// No summary (an older archive): decompressed instead.
	writeFile(t, p, compress(t, orig))
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Fatalf("no summary: ReadFooter %+v, %v", got, err)
	}

	// A summary whose footer differs (its own CRC recomputed, so only the
	// comparison with the segment can tell), and one with a bad CRC.
	other := append([]byte{}, arch...)
	s := other[len(other)-segment.SummaryFrameSize:]
	s[16+segment.HeaderSize+16]++ // the footer's record count
	foot := s[16+segment.HeaderSize : 16+segment.HeaderSize+segment.FooterSize]
	binary.LittleEndian.PutUint32(foot[124:], crc32.Checksum(foot[:124], crc32.MakeTable(crc32.Castagnoli)))
	binary.LittleEndian.PutUint32(s[len(s)-4:], crc32.Checksum(s[8:len(s)-4], crc32.MakeTable(crc32.Castagnoli)))
	writeFile(t, p, other)
	if got, err := segment.ReadFooter(p); err != nil || got.Records != want.Records+1 {
		t.Fatalf("altered summary: ReadFooter %+v, %v", got, err)
	}
	im = imageOf(t, p)
	if err := im.CheckSummary(); !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("CheckSummary of an altered summary: %v", err)
	}
	im.Close()
	s[20] ^= 1
	writeFile(t, p, other)
	// Its CRC fails: never trusted, the content's footer instead (the
	// copy above says one record more).
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Fatalf("damaged summary: ReadFooter %+v, %v; want the content's %+v", got, err, want)
	}
	im = imageOf(t, p)
	if err := im.CheckSummary(); !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("CheckSummary of a damaged summary: %v", err)
	}
	im.Close()

	// An unsealed .seg file, and a truncated one.
	unsealed := segment.NewImage(4, segment.MinSegmentSize, 1)
	u := writeFile(t, filepath.Join(dir, segment.FileName(4)), unsealed)
	if _, err := segment.ReadFooter(u); !errors.Is(err, segment.ErrNoFooter) {
		t.Fatalf("unsealed: %v", err)
	}
	if err := os.Truncate(u, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := segment.ReadFooter(u); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
}

// sealedFile writes a sealed segment of n records as segment seq's file in
// dir and returns its bytes and its footer.
func sealedFile(t *testing.T, dir string, seq uint64, n int) ([]byte, segment.Footer) {
	t.Helper()
	img := sealedSegment(t, seq, n)
	im := imageOf(t, writeFile(t, filepath.Join(dir, segment.FileName(seq)), img))
	defer im.Close()
	ft, err := im.Footer()
	if err != nil {
		t.Fatal(err)
	}
	return img, ft
}

func imageOf(t *testing.T, p string) *segment.Image {
	t.Helper()
	im, err := segment.OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// TestArchiveSummaryByteFlips: whatever single byte of the summary frame
// is damaged, ReadFooter returns the segment's true footer (the damage
// hid the summary, so the archive was decompressed) or an error, never a
// wrong footer; CheckSummary reports every flip inside the copy, and one in
// the frame's own header makes the archive undecodable (corrupt).
func TestArchiveSummaryByteFlips(t *testing.T) {
	dir := t.TempDir()
	orig, want := sealedFile(t, dir, 5, 30)
	good := segment.AppendSummary(compress(t, orig), orig)
	p := filepath.Join(dir, segment.ArchiveName(5))
	at := len(good) - segment.SummaryFrameSize
	for i := at; i < len(good); i++ {
		bad := append([]byte{}, good...)
		bad[i] ^= 0x40
		writeFile(t, p, bad)
		got, err := segment.ReadFooter(p)
		if err == nil && got != want {
			t.Fatalf("byte %d of the summary flipped: ReadFooter returned a wrong footer %+v", i-at, got)
		}
		im, err := segment.OpenImage(p)
		if err != nil {
			// The frame's own header damaged: the archive no longer
			// decodes at all, which every reader and verify report.
			if i-at >= 8 || !errors.Is(err, segment.ErrCorrupt) {
				t.Fatalf("byte %d of the summary flipped: %v", i-at, err)
			}
			continue
		}
		cerr := im.CheckSummary()
		im.Close()
		if i-at >= 8 && cerr == nil {
			t.Fatalf("byte %d of the summary flipped: CheckSummary found nothing", i-at)
		}
		// Named at the archive's offset of what is found damaged: the
		// tag, checked first, else the checksum.
		wantOff := len(good) - 4
		if i-at < 16 {
			wantOff = at + 8
		}
		if want := fmt.Sprintf("%s: offset %d: archive summary: ", p, wantOff); cerr != nil && !strings.HasPrefix(cerr.Error(), want) {
			t.Fatalf("byte %d of the summary flipped: CheckSummary %v; want %q…", i-at, cerr, want)
		}
	}
}

// TestReadHeader: the header of a .seg file, of an archive from its
// summary (even with the compressed frame destroyed), of an older archive
// without one by decompressing, and errors naming the file otherwise.
func TestReadHeader(t *testing.T) {
	dir := t.TempDir()
	orig, foot := sealedFile(t, dir, 7, 10)
	want, err := segment.DecodeHeader(orig[:segment.HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segment.FileName(7))
	if h, err := segment.ReadHeader(seg); err != nil || h != want {
		t.Fatalf(".seg: %+v, %v; want %+v", h, err, want)
	}
	arch := segment.AppendSummary(compress(t, orig), orig)
	for i := 8; i < len(arch)-segment.SummaryFrameSize; i++ {
		arch[i] = 0xAA
	}
	p := writeFile(t, filepath.Join(dir, segment.ArchiveName(7)), arch)
	if h, err := segment.ReadHeader(p); err != nil || h != want {
		t.Fatalf("archive with a summary: %+v, %v", h, err)
	}
	writeFile(t, p, compress(t, orig))
	if h, err := segment.ReadHeader(p); err != nil || h != want {
		t.Fatalf("archive without a summary: %+v, %v", h, err)
	}
	readHeaderDamagedSummary(t, p, orig, want, foot)
	orig[17] ^= 1 // the sequence number: the header's CRC fails
	writeFile(t, seg, orig)
	if _, err := segment.ReadHeader(seg); !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("damaged header: %v", err)
	}
	if _, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(8))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// readHeaderDamagedSummary: an archive whose summary is damaged gives its
// header and footer (ReadHeader, ReadFooter) from its content; so does one
// without a summary whose content checksum fails (the header's CRC vouches
// for the header); one whose summary and content are both damaged is
// ErrCorrupt naming the file once, and where the summary is damaged.
func readHeaderDamagedSummary(t *testing.T, p string, orig []byte, want segment.Header, foot segment.Footer) {
	t.Helper()
	good := segment.AppendSummary(compress(t, orig), orig)
	at := len(good) - segment.SummaryFrameSize
	crc := len(good) - 4 // the summary's checksum
	for _, tc := range []struct {
		what   string
		damage func(s []byte)
		// The archive file's offset of the summary's damage found, and
		// what it says: in ReadFooter's error when the content fails too.
		off  int
		says string
	}{
		{"tag", func(s []byte) { s[8] ^= 1 }, at + 8, "bad summary tag"},
		{"header copy", func(s []byte) { s[16+10] ^= 1 }, crc, "checksum mismatch"},
		{"footer copy", func(s []byte) { s[16+segment.HeaderSize+3] ^= 1 }, crc, "checksum mismatch"},
		{"checksum", func(s []byte) { s[len(s)-1] ^= 1 }, crc, "checksum mismatch"},
		{"header copy, checksum recomputed", func(s []byte) {
			s[16+10] ^= 1
			binary.LittleEndian.PutUint32(s[len(s)-4:], crc32.Checksum(s[8:len(s)-4], crc32.MakeTable(crc32.Castagnoli)))
		}, at + 16 + 60, "header checksum mismatch"},
	} {
		bad := append([]byte{}, good...)
		tc.damage(bad[at:])
		writeFile(t, p, bad)
		if f, err := segment.ReadFooter(p); err != nil || f != foot {
			t.Errorf("summary's %s damaged: ReadFooter %+v, %v; want the content's %+v", tc.what, f, err, foot)
		}
		if h, err := segment.ReadHeader(p); err != nil || h != want {
			t.Errorf("summary's %s damaged: ReadHeader %+v, %v; want %+v", tc.what, h, err, want)
		}
		for i := 8; i < at; i++ {
			bad[i] = 0xAA // the compressed frame destroyed too
		}
		writeFile(t, p, bad)
		_, err := segment.ReadFooter(p)
		summary := fmt.Sprintf(" (and at offset %d: archive summary: %s", tc.off, tc.says)
		if !errors.Is(err, segment.ErrCorrupt) || err == nil ||
			!strings.HasPrefix(err.Error(), p+":") || strings.Count(err.Error(), p) != 1 || !strings.Contains(err.Error(), summary) {
			t.Errorf("summary's %s and content damaged: ReadFooter %v; want ErrCorrupt naming the file once, and %q", tc.what, err, summary)
		}
	}

	noSum := compress(t, orig)
	noSum[len(noSum)-1] ^= 1 // the content checksum, read last
	writeFile(t, p, noSum)
	if _, err := segment.ReadArchive(p); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("content checksum damaged: ReadArchive %v", err)
	}
	if h, err := segment.ReadHeader(p); err != nil || h != want {
		t.Errorf("content checksum damaged, no summary: ReadHeader %+v, %v", h, err)
	}

	badHeader := append([]byte{}, orig...)
	badHeader[17] ^= 1 // the sequence number: the header's CRC fails
	both := segment.AppendSummary(compress(t, badHeader), orig)
	both[len(both)-1] ^= 1
	writeFile(t, p, both)
	summary := fmt.Sprintf(" (and at offset %d: archive summary: checksum mismatch", len(both)-4)
	if _, err := segment.ReadHeader(p); !errors.Is(err, segment.ErrCorrupt) ||
		!strings.HasPrefix(err.Error(), p+":") || strings.Count(err.Error(), p) != 1 || !strings.Contains(err.Error(), summary) {
		t.Errorf("summary and content header damaged: %v; want ErrCorrupt naming the file once, and the summary's offset: %q", err, summary)
	}
}

// TestReadFirstFrame: the header and the first frame slot of a segment
// file, read without mapping it and decoded against the header's
// sequence: unwritten for a segment nothing was claimed in, reserved for
// a claim, committed (its length and time), torn for frames written for
// another sequence (a header rewritten over a copy); a damaged header is
// ErrCorrupt naming the file; a file cut inside the slot reads the
// missing bytes as zero.
func TestReadFirstFrame(t *testing.T) {
	dir := t.TempDir()
	img := segment.NewImage(3, 64<<10, 1)
	p := filepath.Join(dir, segment.FileName(3))
	check := func(what string, want segment.FrameState) segment.Frame {
		t.Helper()
		writeFile(t, p, img)
		h, f, err := segment.ReadFirstFrame(p)
		if err != nil || h.Seq != 3 || f.State != want || f.Offset != segment.HeaderSize {
			t.Fatalf("%s: %+v, frame %+v, %v; want %v", what, h, f, err, want)
		}
		return f
	}
	check("empty", segment.Unwritten)
	big := bytes.Repeat([]byte("record "), 1000) // far past the slot's header
	segment.PutFrame(img, 3, segment.HeaderSize, segment.TypeData, 2, big)
	if f := check("committed", segment.Committed); f.Length != int32(segment.FrameHeaderSize+len(big)) || f.Time != 2 {
		t.Fatalf("committed: length %d, time %d; want %d, 2", f.Length, f.Time, segment.FrameHeaderSize+len(big))
	}
	word := segment.LoadLength(img, segment.HeaderSize)
	segment.StoreLength(img, segment.HeaderSize, -word)
	check("claimed", segment.Reserved)
	segment.StoreLength(img, segment.HeaderSize, word)

	// The frames of segment 2 under a header saying 3: the CRC fails.
	other := segment.NewImage(2, 64<<10, 1)
	segment.PutFrame(other, 2, segment.HeaderSize, segment.TypeData, 2, big)
	copy(img[segment.HeaderSize:], other[segment.HeaderSize:])
	check("another sequence's frame", segment.Torn)

	writeFile(t, p, img[:segment.HeaderSize+2])
	if _, f, err := segment.ReadFirstFrame(p); err != nil || f.State != segment.Torn {
		t.Fatalf("cut inside the commit word: frame %+v, %v; want torn", f, err)
	}
	img[17] ^= 1
	writeFile(t, p, img)
	if _, _, err := segment.ReadFirstFrame(p); !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("damaged header: %v", err)
	}
	if _, _, err := segment.ReadFirstFrame(filepath.Join(dir, segment.FileName(4))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// HasRecordBytes looks at the record area only: the header and a footer
// are not records; a byte anywhere between them is found, in any chunk.
func TestHasRecordBytes(t *testing.T) {
	dir := t.TempDir()
	const size = 3 << 20 // several of its chunks
	p := filepath.Join(dir, segment.FileName(3))
	for _, tc := range []struct {
		what string
		at   int64 // a non-zero byte there, or -1
		want bool
	}{
		{"created ahead", -1, false},
		{"in the footer", size - 1, false},
		{"first slot", segment.HeaderSize + 9, true},
		{"after a 2 MiB gap", 2<<20 + 5, true},
		{"last record byte", segment.RecordLimit(size) - 1, true},
	} {
		img := segment.NewImage(3, size, 1)
		if tc.at >= 0 {
			img[tc.at] = 1
		}
		writeFile(t, p, img)
		if got, err := segment.HasRecordBytes(p); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.what, got, err, tc.want)
		}
	}
	writeFile(t, p, segment.NewImage(3, size, 1)[:segment.HeaderSize+100])
	if got, err := segment.HasRecordBytes(p); err != nil || got {
		t.Errorf("short file of zeros: %v, %v", got, err)
	}
	missing := filepath.Join(dir, segment.FileName(4))
	if _, err := segment.HasRecordBytes(missing); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

// TestArchivedFooterWithoutMagic: a footer without its magic reads as a
// seal that did not finish only because a sealer stores a segment file's
// footer in place, magic last. An archive's content and its summary's
// copy are written whole, from a sealed segment: without the magic they
// are damage (ErrCorrupt), which recovery answers by taking the digest
// from the archive's content (sealedDigest), not "not sealed", which
// makes writer.Open fail on an archive.
func TestArchivedFooterWithoutMagic(t *testing.T) {
	dir := t.TempDir()
	orig, _ := sealedFile(t, dir, 3, 20)
	cut := bytes.Clone(orig)
	clear(cut[len(cut)-segment.FooterSize:][:len(segment.FooterMagic)])
	p := filepath.Join(dir, segment.ArchiveName(3))
	for _, c := range []struct {
		name string
		arch []byte
	}{
		{"content, no summary", compress(t, cut)},
		{"content and summary", segment.AppendSummary(compress(t, cut), cut)},
	} {
		writeFile(t, p, c.arch)
		if _, err := segment.ReadFooter(p); !errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrNoFooter) {
			t.Errorf("%s: ReadFooter: %v, want damage", c.name, err)
		}
	}
	// The summary's copy alone: damage, so ReadFooter goes on to the
	// content, whose footer is intact ("not sealed" would have been
	// taken for the answer).
	writeFile(t, p, segment.AppendSummary(compress(t, orig), cut))
	if _, _, err := segment.ReadSummary(p); !errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrNoFooter) {
		t.Errorf("summary's copy: ReadSummary: %v, want damage", err)
	}
	h, _ := segment.DecodeHeader(orig)
	want, _ := segment.DecodeFooter(orig, h)
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Errorf("summary's copy: ReadFooter: %+v, %v; want the content's footer %+v", got, err, want)
	}
	writeFile(t, p, compress(t, cut))
	im := imageOf(t, p)
	defer im.Close()
	if _, err := im.Footer(); !errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrNoFooter) {
		t.Errorf("the archive's image: Footer: %v, want damage", err)
	}
}

// TestReadFirstFrameBoundedMemory: a follower probes the first frame of
// the files after its segment at every poll while it waits (a copy of
// another segment there, or a real one whose first frame is damaged,
// never counts, so the probe repeats). ReadFirstFrame read a committed
// DATA frame whole into a buffer of the length its commit word gives:
// a copy of a segment whose first record is large cost that much memory
// (and a read of it) per poll, and a length read from the file decided
// an allocation. Its CRC is checked over the file read in bounded chunks
// instead, for every length, and the verdicts stay the decoder's.
func TestReadFirstFrameBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	const size = 16 << 20
	p := filepath.Join(dir, segment.FileName(3))
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	for _, tc := range []struct {
		what string
		seq  uint64 // the frames' sequence
		want segment.FrameState
	}{
		{"own frame", 3, segment.Committed},
		{"another sequence's frame", 2, segment.Torn},
	} {
		img := segment.NewImage(3, size, 1)
		segment.PutFrame(img, tc.seq, segment.HeaderSize, segment.TypeData, 2, big)
		writeFile(t, p, img)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const calls = 4
		for range calls {
			_, f, err := segment.ReadFirstFrame(p)
			if err != nil || f.State != tc.want || f.Length != int32(segment.FrameHeaderSize+len(big)) {
				t.Fatalf("%s: frame %+v, %v; want %v", tc.what, f, err, tc.want)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / calls; per > 256<<10 {
			t.Errorf("%s: %d bytes allocated per call for a first frame of %d bytes", tc.what, per, len(big))
		}
	}
}

// TestSummaryFooterAllZeros: compress-finished writes a summary for a
// sealed segment only, so a summary whose CRC checks but whose footer copy
// is all zeros is forged or damaged, never "not sealed". Taken for the
// answer, it made ReadFooter call a sealed archive unsealed without
// decompressing it (recovery would then have chained from zeros). It is
// damage: the content is read instead, and CheckSummary (verify's footer
// finding) reports it.
func TestSummaryFooterAllZeros(t *testing.T) {
	dir := t.TempDir()
	orig, _ := sealedFile(t, dir, 3, 20)
	zeroed := bytes.Clone(orig)
	clear(zeroed[len(zeroed)-segment.FooterSize:])
	p := writeFile(t, filepath.Join(dir, segment.ArchiveName(3)), segment.AppendSummary(compress(t, orig), zeroed))
	checkSummaryDistrusted(t, p, orig)
}
