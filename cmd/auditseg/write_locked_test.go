package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/writer"
)

// TestWriteRefusedWhileAnotherWriterHoldsTheLog: README, write's exit
// codes: "2 ... the log could not be opened (for example another writer
// holds it)". The refusal names the holder's pid, and nothing of the
// input reaches the log.
func TestWriteRefusedWhileAnotherWriterHoldsTheLog(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, stderr, code := execute(t, []byte("not to be written\n"), "write", "-q", "--segment-size", "64KiB", dir)
	if want := fmt.Sprint(os.Getpid()); code != exitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want %d, naming the holder's pid %s", code, stderr, exitUsage, want)
	}
	if _, err := w.Append([]byte("the holder still writes")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, _, code := execute(t, nil, "tail", "-n", "+1", dir)
	if code != exitOK || out != "the holder still writes\n" {
		t.Fatalf("tail: exit %d, %q; want only the holder's record", code, out)
	}
}
