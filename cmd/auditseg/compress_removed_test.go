package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestCompressFinishedSkipsRemoved: a segment that a retention job removes
// after compress-finished planned it is reported as skipped, with the
// reason, not as a failure, and the run exits 0. The command's own
// reporting runs inside an Observer that also plays the retention job, so
// the removal lands right after the plan, before any segment is opened;
// the options come from the command's flags.
func TestCompressFinishedSkipsRemoved(t *testing.T) {
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			dir, _ := compressLog(t, 8000)
			l := listing(t, dir)
			if len(l.Segments) < 4 {
				t.Fatalf("only %d segments", len(l.Segments))
			}
			gone := l.Segments[0]
			opts, err := compressFlags{level: "default", jobs: 2, output: output}.options()
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			c := newCompressReport(context.Background(), &stdout, &stderr, output)
			opts.Observer = func(ev archive.Event) {
				c.observe(ev)
				if ev.Step == archive.StepPlanned {
					if err := os.Remove(gone.Path); err != nil {
						t.Error(err)
					}
				}
			}
			res, runErr := archive.Run(context.Background(), dir, opts)
			code := exitOK
			if err := c.finish(dir, res, runErr); err != nil {
				code = exitCode(err)
				stderr.WriteString(err.Error())
			}
			if code != exitOK || stderr.Len() != 0 {
				t.Fatalf("exit %d, want 0; stderr %q", code, stderr.String())
			}
			checkSkippedRemoved(t, output, stdout.String(), gone.Seq, len(l.Segments)-2)
			// The progress counts the skipped segment too: it ends at
			// the planned total (it read nothing, and ended short).
			if c.done != c.total || c.segs != c.totalSegs {
				t.Errorf("progress ends at %d of %d bytes, %d of %d segments", c.done, c.total, c.segs, c.totalSegs)
			}
			for _, p := range []string{gone.Path, segment.ArchiveOf(gone.Path)} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s is there: the removed segment came back", p)
				}
			}
		})
	}
}

// checkSkippedRemoved checks the output of a run that archived done
// segments and skipped segment seq as removed meanwhile.
func checkSkippedRemoved(t *testing.T, output, stdout string, seq uint64, done int) {
	t.Helper()
	const why = "removed while compress-finished ran"
	if output == "text" {
		if !strings.HasPrefix(stdout, "compress-finished: "+plural(done, "segment")+", ") ||
			!strings.Contains(stdout, ", 1 skipped ("+why+")") || strings.Contains(stdout, "FAILED") {
			t.Errorf("summary %q", stdout)
		}
		return
	}
	var j struct {
		Segments, Failed int
		Results          []struct {
			Seq             uint64
			Outcome, Reason string
			Error           string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if j.Segments != done || j.Failed != 0 || len(j.Results) != done+1 {
		t.Errorf("segments %d failed %d results %d, want %d 0 %d", j.Segments, j.Failed, len(j.Results), done, done+1)
	}
	for _, r := range j.Results {
		removed := r.Outcome == "skipped" && strings.Contains(r.Reason, why) && r.Error == ""
		if (r.Seq == seq) != removed {
			t.Errorf("result %+v", r)
		}
	}
}
