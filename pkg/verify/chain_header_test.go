package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestChainPastRefusedHeader: a sealed segment whose header recovery
// refuses (its sequence number disagrees with the file name, its CRC
// fails, or it claims another size than the file's) is not one recovery
// chains to (FORMAT.md section 8, step 3.1):
// as the newest segment it is left as it is, and the next segment is
// chained to the one sealed before it. Verify accepts that link, and
// also the one a segment sealed before the header went wrong holds (its
// digest, the footer being intact); any other is a chain finding, as is
// the link of a segment sealed after one that was since replaced by a
// copy of another (the segment it chains to is gone). (Verify
// took such a segment for the chain's anchor: the segment recovery chained
// past it was reported as a broken link. Past a header of another size,
// whose footer is not where the header puts it, it did not check the link
// at all: a forged segment 4 passed.)
func TestChainPastRefusedHeader(t *testing.T) {
	cases := []struct {
		name string
		// spoil makes segment 3 of l, sealed, one whose header recovery
		// refuses.
		spoil func(t *testing.T, l *testLog, s1, s3 *seg)
		want  want // the header's finding
		// replaced: segment 3 is another segment now: unless recovery
		// chained segment 4 past it, 4 chains to a segment that is gone.
		replaced bool
	}{
		{"sequence disagrees with the name", func(t *testing.T, l *testLog, s1, s3 *seg) {
			// A copy of segment 1 put in its place.
			s3.img = slices.Clone(s1.img)
			s3.write(t)
		}, "torn 3:16", true},
		{"header checksum", func(t *testing.T, l *testLog, s1, s3 *seg) {
			s3.img[33] ^= 1 // the creation time
			s3.write(t)
		}, "torn 3:60", false},
		// The footer is not where the header puts it: the one the file
		// ends with stands for it.
		{"header claims a larger size", func(t *testing.T, l *testLog, s1, s3 *seg) {
			setHeaderSize(t, s3, 2*testSize)
			s3.write(t)
		}, "torn 3:65536", false},
		{"header claims a smaller size", func(t *testing.T, l *testLog, s1, s3 *seg) {
			// The record area of a file twice the size, the footer at
			// its end, as sealed; the header's size still the old one.
			img := make([]byte, 2*testSize)
			copy(img, s3.img[:footerAt()])
			copy(img[2*testSize-segment.FooterSize:], s3.img[footerAt():])
			s3.img = img
			s3.write(t)
		}, "torn 3:65536", false},
	}
	for _, tc := range cases {
		for _, recovered := range []bool{false, true} {
			for _, forged := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/recovered=%v/forged=%v", tc.name, recovered, forged), func(t *testing.T) {
					l := newTestLog(t)
					s1 := l.sealed(5)
					l.sealed(5)
					s3 := l.sealed(5)
					if !recovered {
						// Segment 4 sealed by the writer, chained to 3,
						// before 3's header went wrong.
						l.sealed(5)
					}
					tc.spoil(t, l, s1, s3)
					if recovered {
						// Segment 3 is the newest: recovery leaves it and
						// chains segment 4 to segment 2.
						recoverAppend(t, l.dir)
					}
					if forged {
						resealFile(t, filepath.Join(l.dir, segment.FileName(4)), [segment.DigestSize]byte{7})
					}
					for _, quick := range []bool{false, true} {
						rep := mustDir(t, l.dir, Options{Quick: quick})
						var chain4, header bool
						for _, f := range rep.Findings {
							switch k := key(f); {
							case k == tc.want:
								header = true
							case f.Class == Chain && f.Seq == 4:
								chain4 = true
							case f.Seq != 3:
								t.Errorf("quick=%v: finding %s", quick, k)
							}
						}
						broken := forged || tc.replaced && !recovered
						if !header || chain4 != broken {
							t.Errorf("quick=%v: findings\n%swant %s, and a chain finding on segment 4: %v", quick, summary(rep), tc.want, broken)
						}
						i := slices.IndexFunc(rep.Segments, func(s SegmentReport) bool { return s.Seq == 4 })
						if i < 0 || !rep.Segments[i].ChainChecked {
							t.Errorf("quick=%v: segment 4's link not checked", quick)
						}
					}
				})
			}
		}
	}
}

// resealFile seals the segment file at path again, chained to prev.
func resealFile(t *testing.T, path string, prev [segment.DigestSize]byte) {
	t.Helper()
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := segment.DecodeFooter(img, segment.Header{Seq: 4, Size: int64(len(img))})
	if err != nil {
		t.Fatal(err)
	}
	clear(img[len(img)-segment.FooterSize:])
	if _, err := segment.Seal(img, prev, ft.Flags, ft.SealedAt); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestChainPastRefusedHeaders: recovery passes over every sealed
// segment whose header it refuses, however many are newest in a row, and
// chains the next segment to the one sealed before them; where nothing
// before them is known to verify (the first segments present, the older
// ones deleted), the link past them is not checked. (Verify accepted
// past a run of two only the digests of the run's two segments, and past
// one with nothing before it only its own digest: both reported the link
// recovery made as a chain finding.)
func TestChainPastRefusedHeaders(t *testing.T) {
	spoil := func(s *seg) { s.img[33] ^= 1; s.write(t) }
	for _, forged := range []bool{false, true} {
		t.Run(fmt.Sprintf("two in a row/forged=%v", forged), func(t *testing.T) {
			l := newTestLog(t)
			l.sealed(5)
			s2, s3 := l.sealed(5), l.sealed(5)
			spoil(s2)
			spoil(s3)
			recoverAppend(t, l.dir) // segment 4, chained to segment 1
			if forged {
				resealFile(t, filepath.Join(l.dir, segment.FileName(4)), [segment.DigestSize]byte{7})
			}
			for _, quick := range []bool{false, true} {
				rep := mustDir(t, l.dir, Options{Quick: quick})
				chain4 := false
				for _, f := range rep.Findings {
					if f.Class == Chain {
						chain4 = chain4 || f.Seq == 4
						if !forged || f.Seq != 4 {
							t.Errorf("quick=%v: %s: the link recovery made", quick, f.Reason)
						}
					}
				}
				if forged && !chain4 {
					t.Errorf("quick=%v: segment 4 forged, no chain finding:\n%s", quick, summary(rep))
				}
			}
		})
	}
	t.Run("first present", func(t *testing.T) {
		l := newTestLog(t)
		s1 := l.sealed(5)
		s2 := l.sealed(5)
		s3 := l.sealed(5)
		spoil(s3)
		recoverAppend(t, l.dir) // segment 4, chained to segment 2
		for _, s := range []*seg{s1, s2} {
			if err := os.Remove(s.path); err != nil { // retention
				t.Fatal(err)
			}
		}
		for _, quick := range []bool{false, true} {
			rep := mustDir(t, l.dir, Options{Quick: quick})
			for _, f := range rep.Findings {
				if f.Class == Chain {
					t.Errorf("quick=%v: %s: segment 2, which it chains to, is gone", quick, f.Reason)
				}
			}
		}
	})
}

// recoverAppend opens the log in dir with a writer, which recovers it,
// and appends one record.
func recoverAppend(t *testing.T, dir string) {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([]byte("after recovery")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestChainPastRenamedArchive: an archive whose footer's sequence number
// is not its file name's (a copy of another segment's archive put in its
// place) gives recovery no digest: finding it the newest sealed segment,
// recovery warns and chains the next segment from zeros. Verify accepts
// that link beside the archive's own findings, and still reports a
// forged one. (It required the archive's digest: the link recovery made
// was a chain finding.)
func TestChainPastRenamedArchive(t *testing.T) {
	for _, forged := range []bool{false, true} {
		t.Run(fmt.Sprintf("forged=%v", forged), func(t *testing.T) {
			l := newTestLog(t)
			s1 := l.sealed(5)
			l.sealed(5)
			s3 := l.sealed(5)
			p1 := archive(t, l, s1, true)
			p3 := archive(t, l, s3, false)
			if err := os.Rename(p1, p3); err != nil {
				t.Fatal(err)
			}
			recoverAppend(t, l.dir) // segment 4, chained from zeros
			if forged {
				resealFile(t, filepath.Join(l.dir, segment.FileName(4)), [segment.DigestSize]byte{7})
			}
			for _, quick := range []bool{false, true} {
				rep := mustDir(t, l.dir, Options{Quick: quick})
				if has(rep, Chain, 4, footerAt()) != forged {
					t.Errorf("quick=%v: chain finding on segment 4: %v, want %v\n%s", quick, !forged, forged, summary(rep))
				}
			}
		})
	}
}

// setHeaderSize rewrites the size field of s's header, CRC and all.
func setHeaderSize(t *testing.T, s *seg, size int64) {
	t.Helper()
	h, err := segment.DecodeHeader(s.img)
	if err != nil {
		t.Fatal(err)
	}
	h.Size = size
	h.Encode(s.img)
}
