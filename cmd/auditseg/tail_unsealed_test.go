package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// TestTailResidueBeforeCopiedSegment: a dead writer's unsealed segment 3
// before a copy of segment 1 named segment 4 (a valid footer naming
// another sequence). Recovery and verify do not count the copy as sealed:
// segment 3 is crash residue that writer.Open seals, which verify reports
// as unfinished and tail must print as a warning, not as damage before "a
// later segment is sealed". Both exit 1 for segment 4's header.
func TestTailResidueBeforeCopiedSegment(t *testing.T) {
	dir := t.TempDir()
	segs := vLog(t, dir, "sealed", "sealed", "open", "sealed")
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(filepath.Join(log, segment.FileName(4)), segs[1].img, 0o640); err != nil {
		t.Fatal(err)
	}
	p3 := filepath.Join(log, segment.FileName(3))
	out, _, code := execute(t, nil, "verify", log)
	if code != exitFailure || !regexp.MustCompile(`unfinished +3:\d+ .*crash residue`).MatchString(out) {
		t.Fatalf("verify: exit %d, want %d with segment 3 as residue:\n%s", code, exitFailure, out)
	}
	_, stderr, code := execute(t, nil, "tail", "-n", "+1", log)
	warn := fmt.Sprintf("auditseg tail: warning: %s: offset %d:", p3, segs[3].end)
	if code != exitFailure || !strings.Contains(stderr, warn) || strings.Contains(stderr, "later segment is sealed") {
		t.Fatalf("tail: exit %d, stderr %q: want exit %d and %q", code, stderr, exitFailure, warn)
	}
}
