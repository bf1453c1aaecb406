package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// truncateOnFirstWrite is tail's stdout: on the first write it truncates
// the file at path to size, as an operator or a damaged file system might.
type truncateOnFirstWrite struct {
	t    *testing.T
	path string
	size int64
	done bool
	out  bytes.Buffer
}

func (w *truncateOnFirstWrite) Write(p []byte) (int, error) {
	if !w.done {
		w.done = true
		if err := os.Truncate(w.path, w.size); err != nil {
			w.t.Error(err)
		}
	}
	return w.out.Write(p)
}

// Review: one segment truncated while the in-order path prints it is one
// segment that could not be read. payloadCopy counts every buffered record
// whose payload faults as an unreadable segment (unreadable++ per record,
// one stderr line each), and the reader's own report of the walk that
// faults next adds one more: tail ends with "65 segments could not be
// read" for one file.
func TestReviewTruncatedSegmentCountedOnce(t *testing.T) {
	dir := t.TempDir()
	const size = 4 << 20
	now := time.Unix(1_700_000_000, 0).UnixNano()
	img := segment.NewImage(1, size, now)
	off := int64(segment.HeaderSize)
	payload := bytes.Repeat([]byte("p"), 4000)
	for i := 0; i < 300; i++ {
		off = segment.PutFrame(img, 1, off, segment.TypeData, now, payload)
	}
	segment.PutEnd(img, 1, off, now)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, now); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segment.FileName(1))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	// --from: the in-order path; tail's 256 KiB buffer is first written
	// out after ~64 records, in the middle of the reader's first batch of
	// 128; the file is cut below the rest of that batch.
	out := &truncateOnFirstWrite{t: t, path: path, size: 128 << 10}
	stderr, code := executeTo(t, out, nil, "tail", "--from", "1:64", dir)
	lines := strings.Count(stderr, "\n")
	t.Logf("exit %d, %d stderr lines, the first: %q", code, lines, strings.SplitN(stderr, "\n", 2)[0])
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr, fmt.Sprintf("%s: 1 segment could not be read", dir)) {
		t.Errorf("one segment truncated; stderr ends %q", stderr[max(0, len(stderr)-200):])
	}
	if lines > 3 {
		t.Errorf("%d stderr lines for one truncated segment", lines)
	}
}
