package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestQuickArchiveFromSummary: --quick checks an archive from its summary
// (the copies of the header and footer after the zstd frame) and
// decompresses nothing; it decompressed every archive, which made
// --quick of an archived log slower than a full check (0.48 s against
// 0.38 s for 64 archives of 8 MiB; 0.02 s for the same segment files).
// Its result must be the one the decompressed image gives --quick, every
// field and finding, for what --quick looks at in an archive whose
// summary decodes; an archive whose summary does not is decompressed and
// checked as before.
func TestQuickArchiveFromSummary(t *testing.T) {
	cases := []struct {
		name    string
		summary bool // checked from its summary, not decompressed
		damage  func(t *testing.T, s *seg, a string) string
	}{
		{"clean", true, nil},
		{"unknown flags", true, func(t *testing.T, s *seg, a string) string {
			s.setFooter(t, func(f *segment.Footer) { f.Flags |= 4 })
			return "again"
		}},
		{"sealed before created", true, func(t *testing.T, s *seg, a string) string {
			s.setFooter(t, func(f *segment.Footer) { f.SealedAt = baseCreated - 3*3600*second })
			return "again"
		}},
		{"another number's name", true, func(t *testing.T, s *seg, a string) string {
			p := filepath.Join(filepath.Dir(a), segment.ArchiveName(9))
			if err := os.Rename(a, p); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"summary checksum", false, func(t *testing.T, s *seg, a string) string {
			flipByte(t, a, -1)
			return a
		}},
		{"summary's header copy", false, func(t *testing.T, s *seg, a string) string {
			flipByte(t, a, -segment.SummaryFrameSize+20)
			return a
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLog(t)
			s := l.sealed(5)
			a := archive(t, l, s, true)
			if c.damage != nil {
				if p := c.damage(t, s, a); p == "again" {
					a = archive(t, l, s, true)
				} else {
					a = p
				}
			}
			o := Options{Quick: true}.withDefaults()
			_, _, e, err := openImage(a, &o, make([]byte, windowSize))
			if err != nil || (e != nil) != c.summary {
				t.Fatalf("openImage: ends %v, error %v; want ends %v", e != nil, err, c.summary)
			}
			got := checkPath(a, &o, nil)
			im, err := segment.OpenImage(a)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			want := newResult(a, &o)
			checkGuarded(im, want, &o, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("from the summary:\n%+v\n%+v\nfrom the image:\n%+v\n%+v", *got, got.found.list, *want, want.found.list)
			}
		})
	}
}

// flipByte flips the low bit of the byte of the file at path at off, or
// len+off for a negative off.
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 1
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestQuickArchivesNotDecompressed: run where a mapping of a file fails
// (an archive is decompressed from its file mapped), --quick of a log of
// archives finds what it finds of the segment files (a chain link
// broken, END and a payload not read), and a full check cannot read one
// archive. Before, every archive was "cannot be read" under --quick too.
// What --quick does not read of an archive (its compressed content) is
// not checked: a damaged block is found by a full check only.
func TestQuickArchivesNotDecompressed(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	testfs.NoFileMappings(t)
	l := newTestLog(t)
	var s []*seg
	for range 3 {
		s = append(s, l.sealed(5))
	}
	s[1].footer.PrevDigest[0] ^= 1
	s[1].setFooter(t, func(*segment.Footer) {})
	for _, x := range s {
		archive(t, l, x, false)
	}
	flipByte(t, filepath.Join(l.dir, segment.ArchiveName(3)), 30) // its compressed content
	rep := mustDir(t, l.dir, Options{Quick: true, Workers: 1})
	if got, want := classesAt(rep), "chain 2:"; rep.Totals.Sealed != 3 || rep.Totals.Records != 15 || !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 1 {
		t.Fatalf("--quick: %d sealed, %d records, findings:\n%s%s\nwant 3 sealed, 15 records, one finding %q...", rep.Totals.Sealed, rep.Totals.Records, got, summary(rep), want)
	}
	for _, sr := range rep.Segments {
		if st, err := os.Stat(sr.Path); err != nil || !sr.Archived || sr.FileBytes != st.Size() || sr.Bytes != testSize {
			t.Errorf("%s: archived %v, %d bytes in a file of %d; want the file's size and %d", sr.Path, sr.Archived, sr.FileBytes, sr.Bytes, testSize)
		}
	}
	full := mustDir(t, l.dir, Options{Workers: 1})
	if full.Totals.Errors == 0 {
		t.Fatalf("a full check read the archives with mappings refused:\n%s", summary(full))
	}
}

// TestArchiveFileBytes: a segment report's file_bytes is the size of the
// file itself, for an archive the .seg.zst's; a full check gave the
// decompressed size, as bytes does.
func TestArchiveFileBytes(t *testing.T) {
	l := newTestLog(t)
	a := archive(t, l, l.sealed(5), false)
	st, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, quick := range []bool{false, true} {
		rep := mustDir(t, l.dir, Options{Quick: quick})
		if sr := rep.Segments[0]; sr.FileBytes != st.Size() || sr.Bytes != testSize || st.Size() >= testSize {
			t.Errorf("quick %v: file_bytes %d, bytes %d; want %d (the archive) and %d", quick, sr.FileBytes, sr.Bytes, st.Size(), testSize)
		}
	}
}
