package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// An original damaged beside its intact archive (compress-finished
// --keep-original, or a run interrupted before it removed the original):
// tail and verify read the original and fail, and must say that a copy
// they passed over sits beside it, and how to check and read it.
func TestDamagedOriginalNamesItsArchive(t *testing.T) {
	dir := t.TempDir()
	for _, in := range []string{"a\nb\n", "c\n", "d\n"} {
		if _, stderr, code := execute(t, []byte(in), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
			t.Fatal(stderr)
		}
	}
	if _, stderr, code := execute(t, nil, "compress-finished", "--keep-original", dir); code != 0 {
		t.Fatal(stderr)
	}
	seg, a := filepath.Join(dir, segment.FileName(1)), filepath.Join(dir, segment.ArchiveName(1))
	intact := filepath.Join(dir, segment.ArchiveName(2))
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), segment.HeaderSize+segment.FrameHeaderSize); err != nil { // "a" rots
		t.Fatal(err)
	}
	f.Close()

	out, stderr, code := execute(t, nil, "tail", "-n", "+1", dir)
	hint := seg + ": its archive " + a + " is beside it, not read"
	if code != 1 || out != "b\nc\nd\n" || strings.Count(stderr, hint) != 1 ||
		!strings.Contains(stderr, "'auditseg verify "+a+"' checks it") || strings.Contains(stderr, "its archive "+intact) {
		t.Fatalf("tail: exit %d, out %q, stderr %q; want exit 1 and %q once", code, out, stderr, hint)
	}

	out, stderr, code = execute(t, nil, "verify", dir)
	if code != 1 || !strings.Contains(out, a+": archive of a segment whose original is still present") ||
		!strings.Contains(out, "the original FAILED, and this archive, which readers pass over for it, was not checked") ||
		!strings.Contains(out, "(auditseg verify "+a+")") ||
		!strings.Contains(out, intact+": archive of a segment whose original is still present (compress-finished --keep-original, or a run interrupted or still running); the original was verified") {
		t.Fatalf("verify: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if out, stderr, code := execute(t, nil, "verify", a); code != 0 {
		t.Fatalf("verify of the archive: exit %d, out %q, stderr %q", code, out, stderr)
	}
	if out, _, code := execute(t, nil, "tail", "-n", "+1", a); code != 0 || out != "a\nb\n" {
		t.Fatalf("tail of the archive: exit %d, out %q", code, out)
	}
}
