package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestTailUnsealedBeforeSealed: a segment without END frame or footer
// before a sealed one is damage, not a dead writer's unfinished segment:
// segments are sealed in order, and recovery seals only those after the
// newest sealed one, so its end (records, END and footer) was lost, as
// when a sealed segment's last pages never reached the disk. verify says
// missing-end (exit 1); tail printed a warning blaming a dead writer and
// exited 0. An empty one (nothing after its header) is the same damage.
func TestTailUnsealedBeforeSealed(t *testing.T) {
	for _, spec := range []string{"open", "prepared"} {
		t.Run(spec, func(t *testing.T) {
			dir := t.TempDir()
			segs := vLog(t, dir, "sealed", spec, "sealed")
			log := filepath.Join(dir, "log")
			if _, _, code := execute(t, nil, "verify", log); code != exitFailure {
				t.Fatalf("verify: exit %d, want %d (missing-end)", code, exitFailure)
			}
			out, stderr, code := execute(t, nil, "tail", "-n", "+1", log)
			if code != exitFailure {
				t.Fatalf("tail: exit %d, want %d; stderr %q", code, exitFailure, stderr)
			}
			p := filepath.Join(log, segment.FileName(2))
			if at := fmt.Sprintf("%s: offset %d:", p, segs[2].end); !strings.Contains(stderr, at) || strings.Contains(stderr, "warning") {
				t.Fatalf("stderr %q: want damage (no warning) at %q", stderr, at)
			}
			if !strings.Contains(out, `{"seg":1,"n":2`) || !strings.Contains(out, `{"seg":3,"n":2`) {
				t.Fatalf("output %q lacks the records around the damage", out)
			}
		})
	}
}
