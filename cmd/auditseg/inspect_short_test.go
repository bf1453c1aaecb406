package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
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
	size := int64(len(s.img))
	footerAt := segment.RecordLimit(size)
	for _, c := range []struct {
		cut         int64
		footer, end string
	}{
		// After the END frame's header, inside its slot.
		{s.end + 200, fmt.Sprintf("footer   MISSING: the file ends at %d, before the footer at %d (the header says %d bytes): cut short, whether it was sealed cannot be told\n", s.end+200, footerAt, size),
			fmt.Sprintf("runs past the end of the file at %d", s.end+200)},
		// 12 bytes into the footer: the END slot, to the record limit,
		// is all there.
		{footerAt + 12, fmt.Sprintf("footer   CUT: the file ends at %d, 12 bytes into the footer at %d (the header says %d bytes): ", footerAt+12, footerAt, size), ""},
	} {
		if err := os.WriteFile(p, s.img[:c.cut], 0o640); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := execute(t, nil, "inspect", "--hex", p)
		if code != exitOK {
			t.Fatalf("cut at %d: exit %d: %s", c.cut, code, errOut)
		}
		var endLine string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, fmt.Sprintf("%-8d end ", s.end)) {
				endLine = l
			}
		}
		if !strings.Contains(out, c.footer) || strings.Contains(out, "not sealed\n") ||
			!strings.HasSuffix(endLine, c.end) || strings.Contains(endLine, "runs past") != (c.end != "") {
			t.Errorf("cut at %d: want %q, and the END line ending %q:\n%s", c.cut, c.footer, c.end, out)
		}
		// The footer's bytes the file holds, at their offsets; none past
		// its end.
		footerDump := fmt.Sprintf("  %08x  ", footerAt)
		if has := strings.Contains(out, footerDump); has != (c.cut > footerAt) {
			t.Errorf("cut at %d: footer hex dump at %x shown: %v:\n%s", c.cut, footerAt, has, out)
		}
		if wrong := fmt.Sprintf("  %08x  ", c.cut-segment.FooterSize); strings.Contains(out, wrong) {
			t.Errorf("cut at %d: a dump at %x, the file's end less a footer:\n%s", c.cut, c.cut-segment.FooterSize, out)
		}
	}
}
