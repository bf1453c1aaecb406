package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestInspectUndecodableExit: a file in which nothing decodes is damage,
// exit 1 as verify and tail say of it, with the file and the offset named;
// exit 2 stays for a file that cannot be read (missing, not a regular
// file, no permission).
// inspect exited 2 for damage, as for bad usage.
func TestInspectUndecodableExit(t *testing.T) {
	img, _ := salvageImage(t)
	good := zstdFrame(t, img)
	firstBlock := bytes.Clone(good)
	for i := 16; i < 60; i++ {
		firstBlock[i] ^= 0x5a // the first block, after the frame header
	}
	for _, tc := range []struct {
		what   string
		name   string
		file   []byte
		offset string // in the message
	}{
		{"first block damaged", segment.ArchiveName(1), firstBlock, "archive offset "},
		{"not zstd", segment.ArchiveName(1), bytes.Repeat([]byte("x"), 1000), "offset 0"},
		{"empty", segment.ArchiveName(1), nil, "offset 0"},
		{"larger than any segment", segment.FileName(1), nil, "larger than any segment"},
	} {
		dir := filepath.Join(t.TempDir(), "log")
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.file, 0o640); err != nil {
			t.Fatal(err)
		}
		if tc.file == nil && !segment.IsArchiveName(tc.name) {
			if err := os.Truncate(p, segment.MaxSegmentSize+8); err != nil { // sparse
				t.Fatal(err)
			}
		}
		var ad *segment.ArchiveDamage
		if _, err := segment.ReadArchive(p); tc.what == "first block damaged" && (!errors.As(err, &ad) || ad.Lost > segment.HeaderSize) {
			t.Fatalf("%s: %v; want damage from which not even the header decodes", tc.what, err)
		}
		out, stderr, code := execute(t, nil, "inspect", p)
		if code != exitFailure || out != "" || !strings.HasPrefix(stderr, p+": ") || !strings.Contains(stderr, tc.offset) {
			t.Errorf("%s: inspect exit %d, stdout %q, stderr %q; want %d and the file and %q named", tc.what, code, out, stderr, exitFailure, tc.offset)
		}
		if _, _, code := execute(t, nil, "verify", dir); code != exitFailure {
			t.Errorf("%s: verify exit %d, want %d", tc.what, code, exitFailure)
		}
	}

	missing := filepath.Join(t.TempDir(), segment.ArchiveName(1))
	if _, stderr, code := execute(t, nil, "inspect", missing); code != exitUsage || !strings.Contains(stderr, missing) {
		t.Errorf("missing file: exit %d, stderr %q; want %d naming it", code, stderr, exitUsage)
	}
	fifo := filepath.Join(t.TempDir(), segment.ArchiveName(1))
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := execute(t, nil, "inspect", fifo); code != exitUsage || !strings.Contains(stderr, fifo) {
		t.Errorf("named pipe: exit %d, stderr %q; want %d naming it", code, stderr, exitUsage)
	}
	if os.Geteuid() == 0 {
		return // root reads a file whatever its mode
	}
	p := filepath.Join(t.TempDir(), segment.ArchiveName(1))
	if err := os.WriteFile(p, good, 0); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := execute(t, nil, "inspect", p); code != exitUsage || !strings.Contains(stderr, p) {
		t.Errorf("unreadable file: exit %d, stderr %q; want %d naming it", code, stderr, exitUsage)
	}
}
