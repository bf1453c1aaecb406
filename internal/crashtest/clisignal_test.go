package crashtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// records returns the payloads of dir's log as strings.
func records(t *testing.T, dir string) []string {
	t.Helper()
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		out = append(out, string(r.Record().Payload))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCLISignalKeepsLinesWhole: a SIGTERM that arrives while `auditseg
// write` holds the first part of a line (the producer has not written its
// newline yet) must not commit that part as a record: the log would then
// hold a line that was never written, and the rest of the line, written
// to the next run, a second invented record.
func TestCLISignalKeepsLinesWhole(t *testing.T) {
	bin := buildBinary(t, "cmd/auditseg")
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(bin, "write", "-q", "--segment-size", "64KiB", dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	in.Write([]byte("user=alice action=login\nuser=bob action=del"))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(liveRecords(dir)) < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the partial line is read by now
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	got := records(t, dir)
	if len(got) != 1 || got[0] != "user=alice action=login" {
		t.Fatalf("log holds %q, want only the complete line", got)
	}
}

// TestCLISigtermDuringOpen: SIGTERM sent once `auditseg write` holds the
// log's lock, while it is still opening the log (recovery, preparing the
// first segment), must still end it with exit 0, as documented, not kill
// it by the default signal action half-way through.
func TestCLISigtermDuringOpen(t *testing.T) {
	bin := buildBinary(t, "cmd/auditseg")
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(bin, "write", "-q", "--segment-size", "64KiB", dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if alive, _, _ := segment.WriterAlive(dir); alive {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("SIGTERM while opening the log: %v (want exit 0)\n%s", err, stderr.String())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// liveRecords returns the committed payloads of a log a writer holds,
// without reporting frames in flight.
func liveRecords(dir string) []string {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	r, err := reader.Open(dir, reader.Options{})
	if err != nil {
		return nil
	}
	defer r.Close()
	var out []string
	for r.Next() {
		out = append(out, string(r.Record().Payload))
	}
	return out
}
