package crashtest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// IterationsEnv sets the iteration count of the loops for a long run; the
// -crash.iterations test flag does the same.
const IterationsEnv = "AUDITSEG_CRASH_ITERATIONS"

var iterFlag = flag.Int("crash.iterations", 0, "iterations of each kill loop and corruption matrix (default: CI size, or $"+IterationsEnv+")")

// iterations returns the loop size: the flag, the environment, or def (a
// quarter of it with -short).
func iterations(def int) int {
	if *iterFlag > 0 {
		return *iterFlag
	}
	if n, err := strconv.Atoi(os.Getenv(IterationsEnv)); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return max(def/4, 1)
	}
	return def
}

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if spec := os.Getenv(soakChildEnv); spec != "" {
		os.Exit(soakChild(spec))
	}
	d, err := os.MkdirTemp("", "auditseg-crashtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

type built struct {
	once sync.Once
	path string
	err  error
}

var builds sync.Map // package path -> *built

// binary builds a main package of this module (without -race: the children
// need not pay for it) once per test run and returns the executable.
func buildBinary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &built{})
	b := v.(*built)
	b.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		b.path = filepath.Join(binDir, filepath.Base(pkg))
		cmd := exec.Command(goBin, "build", "-o", b.path, "./"+pkg)
		cmd.Dir = "../.." // the module root, from this package's directory
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./%s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// summary logs the line docs/RELIABILITY.md copies its figures from.
func summary(t *testing.T, format string, a ...any) {
	t.Helper()
	t.Logf("SUMMARY %s: "+format, append([]any{t.Name()}, a...)...)
}
