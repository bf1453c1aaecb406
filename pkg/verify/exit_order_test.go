package verify

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExitCodePrecedence: README, verify's exit codes: "When several
// apply, 1 wins over 2, and 2 over 3", and --strict turns an exit 3 into
// 1 (a verdict of 2, something not read, stays 2 under --strict: the
// residue beside it is not all there is to say). A log with crash residue
// (an unsealed newest segment, no writer), a segment that cannot be read
// (a FIFO under its name), and then a torn record.
func TestExitCodePrecedence(t *testing.T) {
	l := newTestLog(t)
	l.sealed(2)
	s2 := l.sealed(2)
	s3 := l.sealed(2)
	l.open(2, false)
	rep := mustDir(t, l.dir, Options{})
	if got := rep.ExitCode(false); got != ExitUnfinished || rep.ExitCode(true) != ExitFindings {
		t.Fatalf("residue only: exit %d (strict %d); want %d (%d):\n%s", got, rep.ExitCode(true), ExitUnfinished, ExitFindings, summary(rep))
	}
	if err := os.Remove(s2.path); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(s2.path, 0o640); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, l.dir, Options{})
	if rep.Totals.Residue == 0 || rep.Totals.Errors == 0 || rep.Totals.Fatal != 0 {
		t.Fatalf("want residue and an error, nothing fatal:\n%s", summary(rep))
	}
	if got, strict := rep.ExitCode(false), rep.ExitCode(true); got != ExitError || strict != ExitError {
		t.Errorf("residue and an unreadable segment: exit %d (strict %d); want %d (%d)", got, strict, ExitError, ExitError)
	}
	s3.img[s3.offs[0]+30] ^= 1 // a payload byte of its first record
	s3.write(t)
	rep = mustDir(t, l.dir, Options{})
	if rep.Totals.Fatal == 0 || rep.Totals.Errors == 0 || rep.Totals.Residue == 0 {
		t.Fatalf("want a fatal finding, an error and residue:\n%s", summary(rep))
	}
	if got, strict := rep.ExitCode(false), rep.ExitCode(true); got != ExitFindings || strict != ExitFindings {
		t.Errorf("a torn record beside an unreadable segment and residue: exit %d (strict %d); want %d", got, strict, ExitFindings)
	}
}
