package segment

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
)

// A log directory named through a symbolic link and "..", with both the
// directory the kernel resolves and the one the name cleans to present:
// List read the first (os.ReadDir) and joined its names to the second,
// a listing of two logs at once; WriterInfo looked for a writer whose
// LOCK file was removed in the first, and for LOCK in the second. Both
// now read the cleaned one, where writer.Open appends.
func TestListAndWriterInfoOfNameThroughLinkAndDotDot(t *testing.T) {
	name, cleaned, resolved := testfs.DotDotName(t)
	for dir, seqs := range map[string][]uint64{cleaned: {1, 2}, resolved: {1, 3, 4}} {
		for _, seq := range seqs {
			if err := os.WriteFile(filepath.Join(dir, FileName(seq)), nil, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := List(name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Segments {
		got = append(got, e.Path)
	}
	want := []string{filepath.Join(cleaned, FileName(1)), filepath.Join(cleaned, FileName(2))}
	if l.Dir != cleaned || !slices.Equal(got, want) {
		t.Fatalf("List(%s): dir %s, segments %q; want %s, %q", name, l.Dir, got, cleaned, want)
	}

	lk, err := AcquireLock(cleaned)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	if err := os.Remove(filepath.Join(cleaned, LockName)); err != nil {
		t.Fatal(err)
	}
	if w, err := WriterInfo(name); err != nil || !w.Alive {
		t.Fatalf("WriterInfo(%s) = %+v, %v; want the writer holding %s", name, w, err, cleaned)
	}
}
