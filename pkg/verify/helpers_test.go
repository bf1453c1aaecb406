package verify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Fixtures are built with the segment builders, so they hold exactly the
// bytes a writer stores. Times are fixed so that digests, and therefore
// golden files, are reproducible.

const (
	testSize    = int64(segment.MinSegmentSize)
	baseCreated = int64(1_700_000_000_000_000_000)
	second      = int64(1_000_000_000)
)

// testLog is a log directory under construction.
type testLog struct {
	t    *testing.T
	dir  string
	prev [segment.DigestSize]byte
	next uint64
}

func newTestLog(t *testing.T) *testLog {
	return &testLog{t: t, dir: t.TempDir(), next: 1}
}

// seg is one built segment: its image, where its frames are, and its file.
type seg struct {
	seq     uint64
	img     []byte
	offs    []int64 // DATA frames
	payload [][]byte
	end     int64 // END frame, or the first free offset when there is none
	path    string
	footer  segment.Footer
}

// payloads returns n distinct records of varied lengths (some need padding).
func payloads(seq uint64, n int) [][]byte {
	var ps [][]byte
	for i := range n {
		p := fmt.Sprintf("segment %d record %d %s", seq, i, strings.Repeat("x", i*7%23))
		ps = append(ps, []byte(p))
	}
	return ps
}

// build makes segment seq with records and, if withEnd, an END frame.
func build(seq uint64, records [][]byte, withEnd bool) *seg {
	return buildSize(seq, testSize, records, withEnd)
}

// buildSize is build for a segment of size bytes.
func buildSize(seq uint64, size int64, records [][]byte, withEnd bool) *seg {
	created := baseCreated + int64(seq)*second
	s := &seg{seq: seq, img: segment.NewImage(seq, size, created), payload: records}
	off := int64(segment.HeaderSize)
	for i, p := range records {
		s.offs = append(s.offs, off)
		off = segment.PutFrame(s.img, seq, off, segment.TypeData, created+int64(i+1)*1000, p)
	}
	s.end = off
	if withEnd {
		segment.PutEnd(s.img, seq, off, created+second/2)
	}
	return s
}

// sealed adds a sealed segment of n records to the log.
func (l *testLog) sealed(n int) *seg {
	l.t.Helper()
	return l.seal(build(l.next, payloads(l.next, n), true))
}

// seal seals s, built with an END frame as the log's next segment, and
// adds it to the log.
func (l *testLog) seal(s *seg) *seg {
	l.t.Helper()
	f, err := segment.Seal(s.img, l.prev, 0, baseCreated+int64(l.next)*second+second/2)
	if err != nil {
		l.t.Fatal(err)
	}
	s.footer, l.prev = f, f.Digest
	return l.add(s)
}

// open adds an unsealed segment of n records, with or without END.
func (l *testLog) open(n int, withEnd bool) *seg {
	return l.add(build(l.next, payloads(l.next, n), withEnd))
}

func (l *testLog) add(s *seg) *seg {
	l.t.Helper()
	s.path = filepath.Join(l.dir, segment.FileName(s.seq))
	l.next = s.seq + 1
	s.write(l.t)
	return s
}

// write stores the image in its file.
func (s *seg) write(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(s.path, s.img, 0o640); err != nil {
		t.Fatal(err)
	}
}

// reseal rewrites the footer after the image was changed on purpose.
func (s *seg) reseal(t *testing.T, prev [segment.DigestSize]byte) {
	t.Helper()
	clear(s.img[len(s.img)-segment.FooterSize:])
	f, err := segment.Seal(s.img, prev, 0, s.footer.SealedAt)
	if err != nil {
		t.Fatal(err)
	}
	s.footer = f
	s.write(t)
}

// setFooter rewrites the footer with a change (a valid CRC, wrong contents).
func (s *seg) setFooter(t *testing.T, change func(*segment.Footer)) {
	t.Helper()
	f := s.footer
	change(&f)
	f.Encode(s.img[len(s.img)-segment.FooterSize:])
	s.write(t)
}

// footerAt is the file offset of the footer.
func footerAt() int64 { return testSize - segment.FooterSize }

// records walks img the way a reader does and returns every record it yields.
func records(img []byte, seq uint64) [][]byte {
	var out [][]byte
	segment.Walk(img, seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
			out = append(out, bytes.Clone(ev.Frame.Payload))
		}
		return true
	})
	return out
}

// mustDir verifies dir and fails the test on an error.
func mustDir(t *testing.T, dir string, o Options) *Report {
	t.Helper()
	rep, err := Dir(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// summary renders findings compactly for failure messages and comparisons.
func summary(rep *Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		r := ""
		if f.Residue {
			r = " residue"
		}
		fmt.Fprintf(&b, "%s %d:%d+%d%s (%s)\n", f.Class, f.Seq, f.Offset, f.Bytes, r, f.Reason)
	}
	return b.String()
}

// has reports whether rep holds a finding of class at seq:off.
func has(rep *Report, class Class, seq uint64, off int64) bool {
	for _, f := range rep.Findings {
		if f.Class == class && f.Seq == seq && f.Offset == off {
			return true
		}
	}
	return false
}

// copyDir copies the files of a log directory to a new one and returns
// it. A live writer's files, copied so, are what killing it would leave:
// every store it made to a mapping is in the page cache. A file gone
// before it is read (a segment creation's temporary, renamed) is left
// out, as a kill before its creation would.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	cp := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cp, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return cp
}

// storeFooterButMagic leaves in s the footer a seal killed before its
// last store leaves (segment.StoreFooter stores the magic last): every
// byte but the magic, chained to the log's last digest.
func (l *testLog) storeFooterButMagic(s *seg) {
	l.t.Helper()
	f, err := segment.SealFooter(s.img, l.prev, 0, baseCreated)
	if err != nil {
		l.t.Fatal(err)
	}
	var b [segment.FooterSize]byte
	f.Encode(b[:])
	m := len(segment.FooterMagic)
	copy(s.img[len(s.img)-segment.FooterSize+m:], b[m:])
	s.write(l.t)
}
