package verify

import (
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNotRegularSegmentIsUnreadable: a FIFO or a directory with a
// segment's name is a segment that cannot be read (exit 2, as any
// unreadable segment), in the middle of the log or as its newest
// segments, and the segments after it are checked. It was an unexpected
// file, which does not count: as the newest segments the log passed,
// every record they held lost without a finding.
func TestNotRegularSegmentIsUnreadable(t *testing.T) {
	l := newTestLog(t)
	var segs []*seg
	for range 6 {
		segs = append(segs, l.sealed(3))
	}
	odd := map[int]string{1: "is a named pipe (FIFO)", 4: "is a named pipe (FIFO)", 5: "is a directory"}
	for i, what := range odd {
		p := segs[i].path
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		var err error
		if strings.Contains(what, "FIFO") {
			err = unix.Mkfifo(p, 0o640)
		} else {
			err = os.Mkdir(p, 0o750)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitError || len(rep.Segments) != len(segs) {
		t.Fatalf("exit %d, %d segments; want %d and %d:\n%s", rep.ExitCode(false), len(rep.Segments), ExitError, len(segs), summary(rep))
	}
	for i, s := range rep.Segments {
		what, isOdd := odd[i]
		switch {
		case isOdd && (s.State != StateUnreadable || s.Status != Fail || s.Path != segs[i].path ||
			!strings.Contains(s.Error, segs[i].path+": ") || !strings.Contains(s.Error, what+", not a regular file")):
			t.Errorf("segment %d: %s %s %s %q; want unreadable, FAIL, saying %q", s.Seq, s.Path, s.State, s.Status, s.Error, what)
		case !isOdd && (s.State != StateSealed || s.Records != 3):
			t.Errorf("segment %d: %s, %d records; want sealed, 3", s.Seq, s.State, s.Records)
		}
	}
	for _, f := range rep.Findings {
		if f.Class == Unexpected || f.Class == Gap {
			t.Errorf("finding %+v: the file is a segment that cannot be read", f)
		}
	}
}
