package testfs

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv names the test a child process started by InChild runs.
const childEnv = "AUDITSEG_TEST_CHILD"

// InChild reports whether the test is running in the child process
// InChild started; otherwise it runs the test there (the test binary
// again, with only that test), failing if that process fails or dies. A
// mapped file truncated under an access that is not guarded raises
// SIGBUS, which kills the process: in a child, the crash fails the one
// test instead of the whole binary.
func InChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		// The child dies with the parent's deadline, not 10 minutes on
		// (its own default), should it hang.
		args = append(args, "-test.timeout="+max(time.Until(d), time.Second).Round(time.Second).String())
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		if i := strings.Index(s, "\ngoroutine "); i > 0 {
			s = s[:i]
		}
		t.Fatalf("the child process failed: %v\n%s", err, s)
	}
	return false
}
