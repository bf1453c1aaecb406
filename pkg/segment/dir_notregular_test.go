package segment

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListNotRegular: a segment's or an archive's name that something
// other than a regular file takes (a FIFO, a directory, a symbolic link,
// a socket) is a segment that cannot be read: List holds it, with why
// (NotRegular), so that readers report it as such and a writer numbers
// past it. Left out as an unexpected file, it was a hole that nobody
// reported at the end of a log: tail printed every other record and
// exited 0, verify passed, and a writer made its number again.
func TestListNotRegular(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, name := range []string{FileName(1), FileName(2), ArchiveName(7)} {
		if err := os.WriteFile(p(name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mkfifo(p(FileName(3)), 0o640))
	must(os.Mkdir(p(ArchiveName(4)), 0o750))
	must(os.Symlink(FileName(1), p(FileName(5))))
	ln, err := net.Listen("unix", p(FileName(6)))
	must(err)
	defer ln.Close()
	// Beside a regular file of the same number, the other is unexpected.
	must(unix.Mkfifo(p(ArchiveName(2)), 0o640))
	must(unix.Mkfifo(p(FileName(7)), 0o640))
	// Both names taken: the segment's is the entry.
	must(unix.Mkfifo(p(FileName(8)), 0o640))
	must(os.Mkdir(p(ArchiveName(8)), 0o750))

	l, err := List(dir)
	must(err)
	type want struct {
		seq      uint64
		path     string
		archived bool
		why      string // "" for a regular file
	}
	wants := []want{
		{1, p(FileName(1)), false, ""},
		{2, p(FileName(2)), false, ""},
		{3, p(FileName(3)), false, "is a named pipe (FIFO), not a regular file"},
		{4, p(ArchiveName(4)), true, "is a directory, not a regular file"},
		{5, p(FileName(5)), false, "is a symbolic link, not a regular file"},
		{6, p(FileName(6)), false, "is a socket, not a regular file"},
		{7, p(ArchiveName(7)), true, ""},
		{8, p(FileName(8)), false, "is a named pipe (FIFO), not a regular file"},
	}
	if len(l.Segments) != len(wants) {
		t.Fatalf("segments %+v; want %d", l.Segments, len(wants))
	}
	for i, w := range wants {
		e := l.Segments[i]
		if e.Seq != w.seq || e.Path != w.path || e.Archived != w.archived || e.Duplicate != "" {
			t.Errorf("entry %d: %+v; want %+v", i, e, w)
		}
		switch {
		case w.why == "" && e.NotRegular != nil:
			t.Errorf("segment %d: NotRegular %v for a regular file", w.seq, e.NotRegular)
		case w.why != "" && (e.NotRegular == nil || e.NotRegular.Error() != w.path+": "+w.why):
			t.Errorf("segment %d: NotRegular %v; want %q", w.seq, e.NotRegular, w.path+": "+w.why)
		}
		// Lookup finds each as List holds it, and Present with it.
		got, ok := Lookup(dir, w.seq)
		if !ok || got.Path != e.Path || got.Archived != e.Archived || (got.NotRegular == nil) != (e.NotRegular == nil) {
			t.Errorf("Lookup(%d) = %+v, %v; List holds %+v", w.seq, got, ok, e)
		}
		if !Present(dir, w.seq) {
			t.Errorf("Present(%d) = false", w.seq)
		}
	}
	if want := []string{p(ArchiveName(2)), p(FileName(7)), p(ArchiveName(8))}; !reflect.DeepEqual(l.Unexpected, want) {
		t.Errorf("unexpected %v; want %v", l.Unexpected, want)
	}
	if n := l.NextSeq(); n != 9 {
		t.Errorf("NextSeq = %d; want 9: a writer would make a number something holds", n)
	}
}
