package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The unexpected files of a log directory are listed up to MaxFindings
// and the rest counted, as a segment's findings are: a directory that
// also held thousands of other files listed every one of them, burying
// the verdict (found by a hostile-user review).
func TestUnexpectedFilesAreBounded(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	for i := range 25 {
		if err := os.WriteFile(filepath.Join(l.dir, fmt.Sprintf("junk%02d", i)), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustDir(t, l.dir, Options{MaxFindings: 10})
	if len(rep.Findings) != 10 || rep.Totals.Findings[Unexpected] != 25 || rep.Totals.Omitted != 15 ||
		rep.Findings[0].Path != filepath.Join(l.dir, "junk00") || rep.ExitCode(true) != ExitClean {
		t.Fatalf("%d findings listed, %d counted, %d omitted, exit %d:\n%s", len(rep.Findings),
			rep.Totals.Findings[Unexpected], rep.Totals.Omitted, rep.ExitCode(true), summary(rep))
	}
}
