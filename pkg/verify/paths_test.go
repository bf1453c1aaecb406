package verify

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestPathsNameEachSegmentOnce: arguments that name the same log or
// segment in other words (a segment file and its directory, in either
// order; the directory through a symbolic link; one file by two names)
// check it once, in one log, and so does a hard link to a segment under
// another name. Only the same words were merged: a segment
// given before its directory was taken out of the directory's log, which
// then reported a gap where it was ("segment 2 is missing between 1 and
// 3", exit 1, for a clean log), and a log or segment named twice was
// checked and counted twice.
func TestPathsNameEachSegmentOnce(t *testing.T) {
	l := newTestLog(t)
	l.sealed(2)
	s2 := l.sealed(2)
	l.sealed(2)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(l.dir, link); err != nil {
		t.Fatal(err)
	}
	viaLink := filepath.Join(link, segment.FileName(2))
	hard := filepath.Join(t.TempDir(), "copy-of-2.seg")
	if err := os.Link(s2.path, hard); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		paths    []string
		segments int
	}{
		{"segment, then its directory", []string{s2.path, l.dir}, 3},
		{"directory, then a segment in it", []string{l.dir, viaLink}, 3},
		{"directory, then through a link", []string{l.dir, link}, 3},
		{"segment through a link, then its directory", []string{viaLink, l.dir}, 3},
		{"one segment by two names", []string{s2.path, viaLink}, 1},
		{"directory, then a hard link to a segment elsewhere", []string{l.dir, hard}, 3},
		{"a hard link to a segment elsewhere, then its directory", []string{hard, l.dir}, 3},
		{"a segment and a hard link to it", []string{s2.path, hard}, 1},
	} {
		rep, err := Paths(c.paths, Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rep.ExitCode(true) != ExitClean || len(rep.Segments) != c.segments || rep.Totals.Records != uint64(2*c.segments) || len(rep.Logs) != 1 {
			t.Errorf("%s: exit %d, %d segments, %d records, %d logs; want clean, %d segments, %d records, one log\n%s",
				c.name, rep.ExitCode(true), len(rep.Segments), rep.Totals.Records, len(rep.Logs), c.segments, 2*c.segments, summary(rep))
		}
	}
}

// TestNoPathsRefused: Paths and Files given no path at all are refused
// (os.ErrInvalid) rather than return a report of nothing, which exited 0:
// a gate fed an empty list (a glob that matched nothing) passed, having
// checked no segment.
func TestNoPathsRefused(t *testing.T) {
	for name, run := range map[string]func([]string, Options) (*Report, error){"Paths": Paths, "Files": Files} {
		for _, paths := range [][]string{nil, {}} {
			rep, err := run(paths, Options{})
			if !errors.Is(err, os.ErrInvalid) || rep != nil {
				t.Fatalf("%s(%#v): report %v, error %v; want no report and os.ErrInvalid", name, paths, rep, err)
			}
		}
	}
}

// TestHardLinkUnderAnotherSegmentName: a hard link to segment 1 named as
// segment 5 in another directory claims another sequence number than the
// file's header; given beside the log that holds segment 1, it is still
// checked, and its finding reported. Merged with segment 1 by its inode,
// it was not: verify L M/5.seg passed, verify M/5.seg alone failed.
func TestHardLinkUnderAnotherSegmentName(t *testing.T) {
	l := newTestLog(t)
	s1 := l.sealed(2)
	l.sealed(2)
	other := filepath.Join(t.TempDir(), segment.FileName(5))
	if err := os.Link(s1.path, other); err != nil {
		t.Fatal(err)
	}
	for _, paths := range [][]string{{l.dir, other}, {other, l.dir}, {s1.path, other}} {
		rep, err := Paths(paths, Options{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range rep.Findings {
			found = found || f.Path == other
		}
		if !found || rep.ExitCode(true) != ExitFindings {
			t.Errorf("%q: exit %d, no finding for %s; want its sequence number reported\n%s", paths, rep.ExitCode(true), other, summary(rep))
		}
	}
}
