package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestInspectSealCut: a footer stored without its magic (a `none` writer
// killed while it sealed, segment.StoreFooter) holds 120 bytes someone
// looking at the file sees with --hex. inspect must say it is a seal that
// did not finish, not that the footer is absent.
func TestInspectSealCut(t *testing.T) {
	dir := t.TempDir()
	segs := vLog(t, dir, "sealed", "sealed")
	s := segs[2]
	clear(s.img[len(s.img)-segment.FooterSize:][:len(segment.FooterMagic)])
	vWrite(t, dir, s)
	out, errOut, code := execute(t, nil, "inspect", filepath.Join(dir, "log", segment.FileName(2)))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "footer   none: its seal did not finish") {
		t.Errorf("footer line does not say the seal did not finish:\n%s", out)
	}
}
