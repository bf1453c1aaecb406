package segment_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestSummaryCopiesNotValid: a summary whose tag and CRC check but whose
// copy of the footer is not a valid sealed footer (DecodeFooter's checks:
// its magic, its own CRC, the header's sequence, an END offset in range),
// or whose copy of the header does not decode, is damaged, as one with a
// bad CRC is: never trusted (ReadFooter, SealedFooter and ReadHeader
// answer from the content), and reported by CheckSummary (verify's footer
// finding) at the summary's offset in the archive. Each archive is a real
// one whose summary bytes are rewritten, its CRC recomputed.
func TestSummaryCopiesNotValid(t *testing.T) {
	dir := t.TempDir()
	orig, _ := sealedFile(t, dir, 3, 20)
	good := segment.AppendSummary(compress(t, orig), orig)
	at := len(good) - segment.SummaryFrameSize
	const hdr, foot = 16, 16 + segment.HeaderSize // the copies, in the frame
	footerCRC := func(s []byte) { putCRC32C(s[foot:], 124) }
	headerCRC := func(s []byte) { putCRC32C(s[hdr:], 60) }
	for _, tc := range []struct {
		what   string
		damage func(s []byte) // s: the summary frame
		says   string
	}{
		{"footer copy all zeros", func(s []byte) { clear(s[foot : foot+segment.FooterSize]) }, "all zeros"},
		{"footer copy without its magic", func(s []byte) { clear(s[foot : foot+8]) }, "bad footer magic"},
		{"footer copy with a bad magic", func(s []byte) { s[foot] ^= 1; footerCRC(s) }, "bad footer magic"},
		{"footer copy with a bad CRC", func(s []byte) { s[foot+16]++ }, "footer checksum mismatch"},
		{"footer copy of another sequence", func(s []byte) { s[foot+8]++; footerCRC(s) }, "does not match header sequence"},
		{"footer copy's END offset out of range", func(s []byte) { s[foot+24] |= 7; footerCRC(s) }, "out of range"},
		{"header copy all zeros", func(s []byte) { clear(s[hdr : hdr+segment.HeaderSize]) }, "bad magic"},
		{"header copy with reserved bytes", func(s []byte) { s[hdr+40] = 1; headerCRC(s) }, "reserved header bytes"},
	} {
		b := append([]byte{}, good...)
		s := b[at:]
		tc.damage(s)
		putCRC32C(s[8:], len(s)-12)
		p := writeFile(t, filepath.Join(dir, segment.ArchiveName(3)), b)
		t.Run(tc.what, func(t *testing.T) {
			if _, _, err := segment.ReadSummary(p); !strings.Contains(fmt.Sprint(err), tc.says) {
				t.Errorf("ReadSummary: %v; want %q", err, tc.says)
			}
			checkSummaryDistrusted(t, p, orig)
		})
	}
}

// putCRC32C stores the CRC32C of b[:n] at b[n:], as the format does.
func putCRC32C(b []byte, n int) {
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
}

// checkSummaryDistrusted checks that the archive at p, of the sealed
// segment orig, has a damaged summary: ErrCorrupt (never ErrNoFooter, "not
// sealed", which callers take for the answer), orig's header and footer
// read from the content instead, and CheckSummary's error naming p and an
// offset inside the summary.
func checkSummaryDistrusted(t *testing.T, p string, orig []byte) {
	t.Helper()
	if _, _, err := segment.ReadSummary(p); !errors.Is(err, segment.ErrCorrupt) || errors.Is(err, segment.ErrNoFooter) {
		t.Errorf("ReadSummary: %v, want damage", err)
	}
	h, _ := segment.DecodeHeader(orig)
	want, _ := segment.DecodeFooter(orig, h)
	if got, err := segment.ReadFooter(p); err != nil || got != want {
		t.Errorf("ReadFooter: %+v, %v; want the content's footer %+v", got, err, want)
	}
	if got, err := segment.SealedFooter(p); err != nil || got != want {
		t.Errorf("SealedFooter: %+v, %v; want the content's footer %+v", got, err, want)
	}
	if got, err := segment.ReadHeader(p); err != nil || got != h {
		t.Errorf("ReadHeader: %+v, %v; want %+v", got, err, h)
	}
	im := imageOf(t, p)
	defer im.Close()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	err = im.CheckSummary()
	var ce *segment.CorruptError
	if !errors.As(err, &ce) || ce.Path != p || ce.Offset < st.Size()-segment.SummaryFrameSize || ce.Offset >= st.Size() ||
		!strings.HasPrefix(ce.Reason, "archive summary: ") {
		t.Errorf("CheckSummary: %v; want damage in the summary of %s", err, p)
	}
}
