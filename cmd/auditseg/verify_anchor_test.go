package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestVerifyAnchor: the anchor a clean run prints, given to a later run,
// passes while the log only grows, and fails it once the segments up to
// it are gone from the end of the log, which a run without it passes.
func TestVerifyAnchor(t *testing.T) {
	dir := t.TempDir()
	vLog(t, dir, "sealed", "sealed", "sealed", "prepared")
	t.Chdir(dir)
	out, errOut, code := execute(t, nil, "verify", "log")
	m := regexp.MustCompile(`anchor for a later run: --anchor (3:[0-9a-f]{64})\n`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("exit %d, no anchor line for segment 3:\n%s%s", code, out, errOut)
	}
	anchor := m[1]
	if out, errOut, code := execute(t, nil, "verify", "--anchor", anchor, "log"); code != 0 || !strings.Contains(out, "anchor: segment 3 matches") {
		t.Fatalf("with its own anchor: exit %d\n%s%s", code, out, errOut)
	}
	for _, seq := range []uint64{3, 4} {
		if err := os.Remove(filepath.Join(dir, "log", segment.FileName(seq))); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := execute(t, nil, "verify", "log"); code != 0 {
		t.Fatalf("the log cut at its end fails without the anchor (the test expects it not to): exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = execute(t, nil, "verify", "--anchor", anchor, "log")
	if code != 1 || !strings.Contains(out, "segment 3 is anchored but missing: the log ends at segment 2") ||
		!strings.Contains(out, "anchor: segment 3 does not match") || !strings.Contains(errOut, "chain") {
		t.Fatalf("with the anchor, after the cut: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "anchor for a later run") {
		t.Errorf("a failing run offers an anchor:\n%s", out)
	}
	for _, bad := range []string{"3", "3:zz", "0:" + strings.Repeat("0", 64)} {
		if _, errOut, code := execute(t, nil, "verify", "--anchor", bad, "log"); code != 2 || !strings.Contains(errOut, "--anchor") {
			t.Errorf("--anchor %q: exit %d, stderr %q; want 2 naming the flag", bad, code, errOut)
		}
	}
	other := t.TempDir()
	vLog(t, other, "sealed")
	for _, paths := range [][]string{{"log", filepath.Join(other, "log")}, {filepath.Join(other, "log", segment.FileName(1))}} {
		args := append([]string{"verify", "--anchor", anchor}, paths...)
		if _, errOut, code := execute(t, nil, args...); code != 2 || !strings.Contains(errOut, "anchors need") {
			t.Errorf("--anchor with %q: exit %d, stderr %q; want 2", paths, code, errOut)
		}
	}
}

// TestVerifyAnchorLineNeedsAFullRunOfTheLog: the anchor a later run is
// offered pins every segment up to it, so only a run that checked them
// offers one: not --quick, which takes the digest from the footer
// without computing it, nor a run over one segment file, which checked
// none of the segments before it (or after: it need not be the newest).
// Both printed one.
func TestVerifyAnchorLineNeedsAFullRunOfTheLog(t *testing.T) {
	dir := t.TempDir()
	vLog(t, dir, "sealed", "sealed", "sealed", "prepared")
	t.Chdir(dir)
	for _, args := range [][]string{
		{"verify", "--quick", "log"},
		{"verify", filepath.Join("log", segment.FileName(2))},
		{"verify", filepath.Join("log", segment.FileName(3))},
	} {
		out, errOut, code := execute(t, nil, args...)
		if code != 0 || !strings.Contains(out, "result: PASS") {
			t.Fatalf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
		if strings.Contains(out, "anchor for a later run") {
			t.Errorf("%q offers an anchor:\n%s", args, out)
		}
	}
	if out, _, _ := execute(t, nil, "verify", "log"); !strings.Contains(out, "anchor for a later run: --anchor 3:") {
		t.Errorf("a full run of the log offers no anchor of segment 3:\n%s", out)
	}
}
