package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A log directory named through a symbolic link and "..", with another
// log in the directory the kernel resolves the name to: write appends to
// the directory the name cleans to (log A), and tail, verify and
// compress-finished read, check and archive that one, not a mix of its
// segments and log B's names. tail given one segment file so named
// stored the creation time of B's segment in its cursor file, which the
// same file named plainly then refused as another log's.
func TestCommandsNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	for _, in := range []string{"a\nb\n", "c\n"} {
		if _, stderr, code := execute(t, []byte(in), "write", "-q", "--segment-size", "64KiB", name); code != 0 {
			t.Fatal(stderr)
		}
	}
	if _, stderr, code := execute(t, []byte("x\n"), "write", "-q", "--segment-size", "64KiB", resolved); code != 0 {
		t.Fatal(stderr)
	}
	if out, stderr, code := execute(t, nil, "tail", "-n", "+1", name); code != 0 || out != "a\nb\nc\n" {
		t.Errorf("tail %s: exit %d, out %q, stderr %q; want log A's records", name, code, out, stderr)
	}

	cur := filepath.Join(t.TempDir(), "cursor")
	seg1 := segment.FileName(1)
	if out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, name+"/"+seg1); code != 0 || out != "a\nb\n" {
		t.Errorf("tail of %s: exit %d, out %q, stderr %q; want log A's segment 1", seg1, code, out, stderr)
	}
	if out, stderr, code := execute(t, nil, "tail", "--cursor-file", cur, filepath.Join(cleaned, seg1)); code != 0 || out != "" {
		t.Errorf("tail of %s named plainly, same cursor: exit %d, out %q, stderr %q; want nothing more", seg1, code, out, stderr)
	}

	if out, stderr, code := execute(t, nil, "inspect", name+"/"+seg1); code != 0 || !strings.HasPrefix(out, "segment "+filepath.Join(cleaned, seg1)+" ") {
		t.Errorf("inspect of %s: exit %d, stderr %q, out\n%s\nwant log A's segment 1", seg1, code, stderr, out)
	}

	out, stderr, code := execute(t, nil, "verify", name)
	if code != 0 || strings.Contains(out, resolved) || !strings.Contains(out, filepath.Join(cleaned, segment.FileName(2))) {
		t.Errorf("verify %s: exit %d, stderr %q, out\n%s\nwant log A's segments, clean", name, code, stderr, out)
	}

	if _, stderr, code := execute(t, nil, "compress-finished", name); code != 0 {
		t.Fatalf("compress-finished %s: exit %d, %s", name, code, stderr)
	}
	for dir, want := range map[string]string{cleaned: segment.ArchiveName(1), resolved: segment.FileName(1)} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("after compress-finished: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(resolved, segment.ArchiveName(1))); err == nil {
		t.Errorf("compress-finished archived log B's segment 1")
	}
}
