package crashtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/verify"
)

// TestCLIDiskFull runs `auditseg write` on a file system that fills up:
// it exits 1 with an error naming the segment it could not create and
// ENOSPC, never a SIGBUS; the log is a prefix of the input; verify finds
// it clean (the command sealed what it had); and after space is freed the
// next run appends after it.
func TestCLIDiskFull(t *testing.T) {
	mnt := testfs.Small(t, "1m")
	bin := buildBinary(t, "cmd/auditseg")
	dir := filepath.Join(mnt, "log")

	c := startWrite(t, bin, dir, 1, "interval", 1000)
	if code, sig := c.end(); code != 0 || sig != 0 {
		t.Fatalf("run 1: exit %d signal %v\n%s", code, sig, c.stderr.String())
	}
	filler := testfs.Fill(t, mnt)
	c = startWrite(t, bin, dir, 2, "interval", 30000)
	code, sig := c.end()
	stderr := c.stderr.String()
	if code != 1 || sig != 0 || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, dir) {
		t.Fatalf("run 2 on a full disk: exit %d signal %v, stderr %q; want exit 1 and ENOSPC naming the segment", code, sig, stderr)
	}
	got := checkPrefix(t, dir, 2)
	if got[1] != 1000 || got[2] == 0 || got[2] >= 30000 {
		t.Fatalf("after the full disk: run 1 has %d lines (want 1000), run 2 %d", got[1], got[2])
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(true) != verify.ExitClean {
		t.Fatalf("verify after the full disk: exit %d, findings %+v", rep.ExitCode(true), rep.Findings)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c = startWrite(t, bin, dir, 3, "interval", 3000)
	if code, sig := c.end(); code != 0 || sig != 0 {
		t.Fatalf("run 3 after space was freed: exit %d signal %v\n%s", code, sig, c.stderr.String())
	}
	after := checkPrefix(t, dir, 3)
	if after[1] != 1000 || after[2] != got[2] || after[3] != 3000 {
		t.Fatalf("after space was freed: %v, want [_ 1000 %d 3000]", after, got[2])
	}
	summary(t, "lines committed before the disk filled=%d, run exit 1 with %q", got[1]+got[2], firstLine(stderr))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
