package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A log named through a symbolic link and "..", with another log in the
// directory the kernel resolves the name to: verify listed that one and
// checked the segments of its list in the directory the name cleans to,
// where writer.Open appends. Log A there (segments 1 and 2) was checked
// as far as log B (segment 2 only) has names: segment 1 was never read,
// and the verdict clean. A segment file named so was B's, judged as part
// of A's log. Both now check A.
func TestVerifyNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	a := &testLog{t: t, dir: cleaned, next: 1}
	a.sealed(3)
	a.sealed(3)
	b := &testLog{t: t, dir: resolved, next: 2}
	b.sealed(5)

	rep := mustDir(t, name, Options{})
	var paths []string
	for _, s := range rep.Segments {
		paths = append(paths, s.Path)
	}
	if rep.ExitCode(true) != ExitClean || rep.Totals.Records != 6 || len(paths) != 2 ||
		paths[0] != filepath.Join(cleaned, segment.FileName(1)) || rep.Logs[0].Dir != cleaned {
		t.Fatalf("Dir(%s): exit %d, %d records, log %s, segments %q; want log A's two, 6 records\n%s",
			name, rep.ExitCode(true), rep.Totals.Records, rep.Logs[0].Dir, paths, summary(rep))
	}

	rep, err := Files([]string{name + "/" + segment.FileName(2)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != 1 || rep.Segments[0].Path != filepath.Join(cleaned, segment.FileName(2)) ||
		rep.Totals.Records != 3 || rep.ExitCode(true) != ExitClean {
		t.Fatalf("Files: exit %d, segments %+v; want log A's segment 2, 3 records\n%s", rep.ExitCode(true), rep.Segments, summary(rep))
	}
}

// inspect takes the same name: it dumped log B's segment (the file the
// kernel resolves the name to) while verify, tail and the reader, given
// that name, read log A's, so a finding of verify looked at with
// inspect showed another file's frames.
func TestInspectNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	a := &testLog{t: t, dir: cleaned, next: 1}
	a.sealed(3)
	b := &testLog{t: t, dir: resolved, next: 1}
	b.sealed(5)
	in, err := Inspect(name + "/" + segment.FileName(1))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	data := 0
	if err := in.Slots(func(s Slot) bool {
		if s.Kind == SlotData {
			data++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cleaned, segment.FileName(1)); in.Path != want || data != 3 {
		t.Fatalf("Inspect(%s): %s, %d records; want %s, log A's 3", name, in.Path, data, want)
	}
}

// Files takes segment files and refuses a directory. 789bf8d cleaned the
// name before its look, which does not follow a symbolic link: "link/"
// (link to a log directory), refused before because the slash made the
// look follow the link, became "link" and was verified as a whole log,
// as "link" already was. A directory reached through a link is refused
// too.
func TestFilesRefusesADirectoryThroughALink(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(l.dir, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, link + "/", l.dir + "/"} {
		if rep, err := Files([]string{p}, Options{}); err == nil || !strings.Contains(err.Error(), p+" is a directory") {
			t.Errorf("Files(%s): %v; want it refused as a directory (report: %d segments)", p, err, len(rep.Segments))
		}
	}
}
