package main

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func TestGeneratedLinesHaveFixedLengthAndAreDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	n, err := writeLines(&a, 1<<20+37, 7)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(a.Len()) || n%lineLen != 0 || n != (1<<20+37)/lineLen*lineLen {
		t.Fatalf("wrote %d bytes (buffer %d), want whole lines up to the size", n, a.Len())
	}
	for i, line := range bytes.SplitAfter(a.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if len(line) != lineLen || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("line %d is %d bytes: %q", i, len(line), line)
		}
		if !bytes.Contains(line, []byte(" user=")) || !bytes.HasPrefix(line, []byte("2026-11-")) {
			t.Fatalf("line %d does not look like an audit line: %q", i, line)
		}
	}
	if _, err := writeLines(&b, 1<<20+37, 7); err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(a.Bytes()) != sha256.Sum256(b.Bytes()) {
		t.Fatal("the same seed gave different input")
	}
}
