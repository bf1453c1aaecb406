package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestVerifySignalDuringLeaseWait (review): verify took no signal: SIGINT
// killed it, and a segment under another process's write lease (a file
// server's) held it in the wait for the lease's break, up to
// lease-break-time and a second (46 s by default). A signal now stops
// the run, there too, before the lease is given up: exit 2 (nothing was
// verified), "interrupted" on stderr, and with --output json the object
// of a run that could not start, not a report.
func TestVerifySignalDuringLeaseWait(t *testing.T) {
	catchIgnored(syscall.SIGINT) // a background job: verify would ignore it too
	dir, _ := compressLog(t, 2000)
	segs := listing(t, dir).Segments
	if len(segs) < 2 {
		t.Fatalf("%d segments; want several", len(segs))
	}
	interrupt := func(func()) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Error(err)
		}
	}
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			out, stderr, code := underLease(t, segs[1].Path, interrupt, "verify", "-j", "1", "-o", output, dir)
			if code != exitUsage || !strings.Contains(stderr, "interrupted") {
				t.Fatalf("SIGINT during a lease's wait: exit %d, stderr %q; want exit %d and interrupted", code, stderr, exitUsage)
			}
			if output == "text" {
				if out != "" {
					t.Errorf("stdout %q; want nothing (no verdict)", out)
				}
				return
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc) != 2 || doc["version"] != 1.0 || doc["error"] != "interrupted" {
				t.Errorf("stdout %q (%v); want only version 1 and error \"interrupted\"", out, err)
			}
		})
	}
}
