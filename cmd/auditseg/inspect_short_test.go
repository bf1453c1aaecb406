package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

// TestInspectShortFile: a sealed segment cut short (its file shorter than
// its header says) is shown as cut, not as a segment never sealed. inspect
// said "footer none: the segment is not sealed" and showed the END frame
// running on past the end of the file as if it were all there (found by a
// hostile-user review); with --hex it dumped the zeros the missing footer
// reads as, at offsets from the file's end.
func TestInspectShortFile(t *testing.T) {
	dir := t.TempDir()
	s := vLog(t, dir, "sealed")[1]
	p := filepath.Join(dir, "log", segment.FileName(1))
	checkInspectShort(t, s, p, "the file ends at", "the end of the file", func(b []byte) []byte { return b })
}

// TestInspectShortArchive: an archive whose content is shorter than its
// header says is shown cut as a short segment file is
// (TestInspectShortFile), not as a segment never sealed, its END frame
// running past the end of the content, and --hex dumping the zeros the
// missing footer reads as.
func TestInspectShortArchive(t *testing.T) {
	dir := t.TempDir()
	s := vLog(t, dir, "sealed")[1]
	if err := os.Remove(filepath.Join(dir, "log", segment.FileName(1))); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "log", segment.ArchiveName(1))
	checkInspectShort(t, s, p, "the archive's content ends at", "the end of the archive's content", func(b []byte) []byte {
		return zstdFrame(t, b)
	})
}

// zstdFrame compresses b as pkg/archive does: one frame stating its
// content size, with a checksum.
func zstdFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc.ResetContentSize(&out, int64(len(b)))
	if _, err := enc.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkInspectShort writes s cut short to p, as made by file (the cut
// image as it is, or compressed), and checks inspect shows it cut: ends
// and end word where the bytes stop, plain and with --hex.
func checkInspectShort(t *testing.T, s *vSeg, p, ends, end string, file func([]byte) []byte) {
	t.Helper()
	size := int64(len(s.img))
	footerAt := segment.RecordLimit(size)
	for _, c := range []struct {
		cut         int64
		footer, end string
	}{
		// After the END frame's header, inside its slot.
		{s.end + 200, fmt.Sprintf("footer   MISSING: %s %d, before the footer at %d (the header says %d bytes): cut short, whether it was sealed cannot be told\n", ends, s.end+200, footerAt, size),
			fmt.Sprintf("runs past %s at %d", end, s.end+200)},
		// 12 bytes into the footer: the END slot, to the record limit,
		// is all there.
		{footerAt + 12, fmt.Sprintf("footer   CUT: %s %d, 12 bytes into the footer at %d (the header says %d bytes): ", ends, footerAt+12, footerAt, size), ""},
	} {
		if err := os.WriteFile(p, file(s.img[:c.cut]), 0o640); err != nil {
			t.Fatal(err)
		}
		inspectPlainAndHex(t, p, func(hex bool, out string) {
			var endLine string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, fmt.Sprintf("%-8d end ", s.end)) {
					endLine = l
				}
			}
			if !strings.Contains(out, c.footer) || strings.Contains(out, "not sealed\n") ||
				!strings.HasSuffix(endLine, c.end) || strings.Contains(endLine, "runs past") != (c.end != "") {
				t.Errorf("cut at %d, --hex %v: want %q, and the END line ending %q:\n%s", c.cut, hex, c.footer, c.end, out)
			}
			if !hex {
				return
			}
			// The footer's bytes the file holds, at their offsets; none
			// past its end.
			footerDump := fmt.Sprintf("  %08x  ", footerAt)
			if has := strings.Contains(out, footerDump); has != (c.cut > footerAt) {
				t.Errorf("cut at %d: footer hex dump at %x shown: %v:\n%s", c.cut, footerAt, has, out)
			}
			if past := fmt.Sprintf("  %08x  ", footerAt+16); strings.Contains(out, past) {
				t.Errorf("cut at %d: a dump at %x, past the end:\n%s", c.cut, footerAt+16, out)
			}
			if wrong := fmt.Sprintf("  %08x  ", c.cut-segment.FooterSize); strings.Contains(out, wrong) {
				t.Errorf("cut at %d: a dump at %x, the file's end less a footer:\n%s", c.cut, c.cut-segment.FooterSize, out)
			}
		})
	}
}

// inspectPlainAndHex runs inspect on p, without and with --hex, and
// calls check with each dump.
func inspectPlainAndHex(t *testing.T, p string, check func(hex bool, out string)) {
	t.Helper()
	for _, hex := range []bool{false, true} {
		args := []string{"inspect", p}
		if hex {
			args = []string{"inspect", "--hex", p}
		}
		out, errOut, code := execute(t, nil, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		check(hex, out)
	}
}

// TestInspectHexShorterThanAHeader: --hex of a file too short to hold a
// segment header dumps the bytes it does hold; it showed none, only that
// the file was too short.
func TestInspectHexShorterThanAHeader(t *testing.T) {
	p := filepath.Join(t.TempDir(), segment.FileName(1))
	if err := os.WriteFile(p, []byte("AUDITSEG-short"), 0o640); err != nil {
		t.Fatal(err)
	}
	inspectPlainAndHex(t, p, func(hex bool, out string) {
		if !strings.Contains(out, "file too short for a segment header (14 bytes)") {
			t.Errorf("hex %v: the header is not reported too short:\n%s", hex, out)
		}
		dumped := strings.Contains(out, "00000000  41 55 44 49 54 53 45 47  2d 73 68 6f 72 74") && strings.Contains(out, "|AUDITSEG-short|")
		if dumped != hex {
			t.Errorf("hex %v: the file's 14 bytes dumped %v:\n%s", hex, dumped, out)
		}
	})
}
