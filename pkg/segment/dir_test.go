package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func TestFileNames(t *testing.T) {
	if FileName(42) != "00000000000000000042.seg" || ArchiveName(42) != "00000000000000000042.seg.zst" {
		t.Fatal(FileName(42), ArchiveName(42))
	}
	for _, seq := range []uint64{1, 9, 10, 1 << 40, math.MaxUint64} {
		if got, arch, ok := ParseName(FileName(seq)); !ok || arch || got != seq {
			t.Errorf("ParseName(FileName(%d)) = %d %v %v", seq, got, arch, ok)
		}
		if got, arch, ok := ParseName(ArchiveName(seq)); !ok || !arch || got != seq {
			t.Errorf("ParseName(ArchiveName(%d)) = %d %v %v", seq, got, arch, ok)
		}
	}
	// Lexical order is sequence order.
	names := []string{FileName(10), FileName(9), FileName(math.MaxUint64), FileName(100), FileName(0)}
	sort.Strings(names)
	want := []string{FileName(0), FileName(9), FileName(10), FileName(100), FileName(math.MaxUint64)}
	if !reflect.DeepEqual(names, want) {
		t.Fatal(names)
	}
	for _, bad := range []string{
		"", ".seg", "42.seg", "0000000000000000042.seg", "000000000000000000042.seg",
		"0000000000000000004a.seg", "-0000000000000000042.seg", "+0000000000000000042.seg",
		"00000000000000000042.seg.tmp", "00000000000000000042.seg.zst.tmp", "00000000000000000042.SEG",
		"00000000000000000042.seg.gz", "00000000000000000042.zst", "99999999999999999999.seg", // > MaxUint64
		"00000000000000000042.seg/", "LOCK", " 0000000000000000042.seg",
		FileName(0), ArchiveName(0), // numbers start at 1
	} {
		if _, _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	touch(FileName(3))
	touch(FileName(1))
	touch(ArchiveName(1)) // interrupted compress-finished: original preferred
	touch(ArchiveName(2)) // archived only
	touch(ArchiveName(10))
	touch(FileName(10)) // created after its archive: still the original
	touch(FileName(4) + TempExt)
	touch(ArchiveName(3) + TempExt)
	touch("notes" + TempExt)
	touch("notes.txt")
	touch(LockName)
	touch("lock")
	// Names of segments that other kinds of file take: TestListNotRegular.

	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantSegs := []Entry{
		{Seq: 1, Path: p(FileName(1)), Duplicate: p(ArchiveName(1))},
		{Seq: 2, Path: p(ArchiveName(2)), Archived: true},
		{Seq: 3, Path: p(FileName(3))},
		{Seq: 10, Path: p(FileName(10)), Duplicate: p(ArchiveName(10))},
	}
	if !reflect.DeepEqual(l.Segments, wantSegs) {
		t.Errorf("segments\n got %+v\nwant %+v", l.Segments, wantSegs)
	}
	// Temps and Unexpected in name order, which is what reports list.
	if want := []string{p(ArchiveName(3) + TempExt), p(FileName(4) + TempExt)}; !reflect.DeepEqual(l.Temps, want) {
		t.Errorf("temps %v, want %v", l.Temps, want)
	}
	wantUnexp := []string{p("lock"), p("notes.tmp"), p("notes.txt")}
	sort.Strings(wantUnexp)
	if !reflect.DeepEqual(l.Unexpected, wantUnexp) {
		t.Errorf("unexpected\n got %v\nwant %v", l.Unexpected, wantUnexp)
	}
	if l.Dir != dir {
		t.Error("Dir")
	}
	if last, ok := l.Last(); !ok || last.Seq != 10 {
		t.Errorf("Last = %+v %v", last, ok)
	}
	if l.NextSeq() != 11 {
		t.Errorf("NextSeq = %d", l.NextSeq())
	}
	// Lookup finds each segment as List holds it, without its Duplicate,
	// and no other name.
	for _, e := range wantSegs {
		e.Duplicate = ""
		if got, ok := Lookup(dir, e.Seq); !ok || got != e {
			t.Errorf("Lookup(%d) = %+v %v, want %+v", e.Seq, got, ok, e)
		}
	}
	for _, seq := range []uint64{4, 5, 6, 7, 8} {
		if got, ok := Lookup(dir, seq); ok {
			t.Errorf("Lookup(%d) = %+v, want nothing", seq, got)
		}
	}
}

// TestListOrder: List returns the segments in sequence order, the
// leftovers and the names that do not belong in name order, whatever
// order the directory holds them in: 100 segments made in a shuffled
// order, archived, both, or not, with leftovers and stray names.
func TestListOrder(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for seq := uint64(1); seq <= 100; seq++ {
		switch seq % 4 {
		case 0:
			names = append(names, FileName(seq))
		case 1:
			names = append(names, ArchiveName(seq))
		case 2:
			names = append(names, FileName(seq), ArchiveName(seq))
		case 3:
			names = append(names, FileName(seq), FileName(seq)+TempExt, fmt.Sprintf("x%d", seq))
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments) != 100 {
		t.Fatalf("%d segments; want 100", len(l.Segments))
	}
	for i, e := range l.Segments {
		if e.Seq != uint64(i+1) || e.Archived != (e.Seq%4 == 1) || (e.Duplicate != "") != (e.Seq%4 == 2) {
			t.Fatalf("segment %d of the listing: %+v", i, e)
		}
	}
	if len(l.Temps) != 25 || len(l.Unexpected) != 25 || !sort.StringsAreSorted(l.Temps) || !sort.StringsAreSorted(l.Unexpected) {
		t.Errorf("%d temps, %d unexpected, in name order %v, %v; want 25 of each, in name order",
			len(l.Temps), len(l.Unexpected), sort.StringsAreSorted(l.Temps), sort.StringsAreSorted(l.Unexpected))
	}
}

// TestJoinName: the paths List builds are filepath.Join's, for every
// kind of cleaned directory name.
func TestJoinName(t *testing.T) {
	for _, dir := range []string{".", "/", "..", "log", "../log", "/var/log/audit"} {
		for _, name := range []string{FileName(1), "x", "..."} {
			if got, want := joinName(dir, name), filepath.Join(dir, name); got != want {
				t.Errorf("joinName(%q, %q) = %q; want %q", dir, name, got, want)
			}
		}
	}
}

func TestListEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	l, err := List(dir)
	if err != nil || len(l.Segments)+len(l.Temps)+len(l.Unexpected) != 0 {
		t.Fatalf("%+v %v", l, err)
	}
	if _, ok := l.Last(); ok || l.NextSeq() != 1 {
		t.Fatal("empty listing")
	}
	missing := filepath.Join(dir, "nope")
	_, err = List(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("List of a missing dir: %v", err)
	}
}

// A real gap stays a gap; a name that a concurrent rename hid from the
// directory read (simulated: a listing taken before it appeared) is found.
func TestListGapRecheck(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{FileName(1), ArchiveName(2), FileName(5)} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments) != 3 || l.missed() {
		t.Fatalf("a real gap (3, 4): %+v, missed %v", l.Segments, l.missed())
	}
	for _, name := range []string{ArchiveName(4), FileName(3)} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		if !l.missed() {
			t.Fatalf("%s appeared inside the gap; missed is false", name)
		}
		os.Remove(filepath.Join(dir, name))
	}
	// More missing numbers than are looked up: bounded, no error.
	if err := os.WriteFile(filepath.Join(dir, FileName(1000)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if l, err = List(dir); err != nil || len(l.Segments) != 4 {
		t.Fatalf("%+v %v", l.Segments, err)
	}
}

// The oldest segment hidden from the directory read (compress-finished
// renamed it to its archive and removed the original meanwhile) is found
// the same way; older ones deleted by retention are not looked for.
func TestListOldestRecheck(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{FileName(7), FileName(8)} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	l, err := List(dir)
	if err != nil || len(l.Segments) != 2 || l.missed() {
		t.Fatalf("segments 7, 8 (1 to 6 deleted): %+v, %v, missed %v", l.Segments, err, l.missed())
	}
	if err := os.WriteFile(filepath.Join(dir, ArchiveName(6)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if !l.missed() {
		t.Fatal("segment 6 appeared before the oldest listed; missed is false")
	}
	if l, err = List(dir); err != nil || len(l.Segments) != 3 || l.Segments[0].Seq != 6 {
		t.Fatalf("%+v %v", l.Segments, err)
	}
}

// TestArchivedInstead: a segment file gone since a listing is read from
// its archive only when the file is gone and the archive is there.
func TestArchivedInstead(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, FileName(7))
	gone := &os.PathError{Op: "open", Path: seg, Err: syscall.ENOENT}
	if a, ok := ArchivedInstead(seg, gone); ok {
		t.Fatalf("no archive yet, got %q", a)
	}
	arch := filepath.Join(dir, ArchiveName(7))
	if err := os.WriteFile(arch, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if a, ok := ArchivedInstead(seg, gone); !ok || a != arch {
		t.Fatalf("got %q, %v; want %q", a, ok, arch)
	}
	for _, err := range []error{nil, &os.PathError{Op: "open", Path: seg, Err: syscall.EACCES}} {
		if a, ok := ArchivedInstead(seg, err); ok {
			t.Errorf("error %v: got %q", err, a)
		}
	}
	for _, p := range []string{arch, filepath.Join(dir, "notes.txt")} {
		if a, ok := ArchivedInstead(p, gone); ok {
			t.Errorf("%s: got %q", p, a)
		}
	}
}
