package blake3

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGeneratedKernel fails when hash_amd64.s is not what gen.go writes:
// the assembly is generated, and an edit to either alone would leave the
// kernel the tests exercise different from the one the generator checks.
func TestGeneratedKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the generator; skipped with -short")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "run", "gen.go").Output()
	if err != nil {
		t.Fatalf("go run gen.go: %v", err)
	}
	have, err := os.ReadFile("hash_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, have) {
		t.Fatal("hash_amd64.s differs from the output of `go run gen.go`; regenerate it: go run gen.go > hash_amd64.s")
	}
}
