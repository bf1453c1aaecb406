package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// checkBytes verifies an in-memory image as the only segment of a log
// whose writer is gone, through the same code as Dir minus the file I/O,
// and fails t unless reading it through windows of every size
// (window.go) finds exactly the same.
func checkBytes(t testing.TB, path string, img []byte, o Options) *Report {
	t.Helper()
	want := checkThrough(path, img, o, nil)
	for _, w := range testWindows(img) {
		if got := checkThrough(path, img, o, w); !reflect.DeepEqual(got, want) {
			t.Fatalf("through a window of %d bytes of %d (%T, mode %d):\n%s\nthrough the mapping:\n%s",
				len(w.buf), len(img), w.src, w.mode, summary(got), summary(want))
		}
	}
	return want
}

// testWindows are windows over img: smaller than a frame header, than a
// frame, than a page, and larger than the image, each as a copy and as a
// view of the image; one that chooses as verify does (window.fill); and a
// copy whose source ends early, as a file truncated after its footer was
// read would.
func testWindows(img []byte) []*window {
	var ws []*window
	view := &segment.Image{Data: img, FileSize: int64(len(img))}
	for _, n := range []int{8, 40, 100, 4096, windowSize} {
		ws = append(ws, &window{src: bytes.NewReader(img), buf: make([]byte, n)},
			&window{src: bytes.NewReader(img), buf: make([]byte, n), im: view, mode: viewing})
	}
	ws = append(ws, &window{src: bytes.NewReader(img), buf: make([]byte, 4096), im: view})
	short := io.NewSectionReader(bytes.NewReader(img), 0, int64(len(img))/3)
	return append(ws, &window{src: short, buf: make([]byte, 4096)})
}

func checkThrough(path string, img []byte, o Options, w *window) *Report {
	o = o.withDefaults()
	im := &segment.Image{Path: path, Data: img, FileSize: int64(len(img))}
	im.Header, im.HeaderErr = segment.DecodeHeader(img)
	im.HeaderErr = segment.WithPath(im.HeaderErr, path)
	r := newResult(path, &o)
	checkImage(im, r, &o, w)
	u := &unit{dir: filepath.Dir(path), whole: true, results: []*result{r}}
	rep := newReport(&o)
	place(context.Background(), u, rep)
	return rep
}

// matrixSegment is a small sealed segment: records with and without
// alignment padding, a PAD frame (an aborted reservation) and END.
type matrixSegment struct {
	seg
	pad    int64 // the PAD frame's offset
	padExt int64
}

func buildMatrix(t testing.TB) *matrixSegment {
	const seq = 5
	created := baseCreated
	m := &matrixSegment{seg: seg{seq: seq, img: segment.NewImage(seq, testSize, created)}}
	recs := [][]byte{[]byte("first"), bytes.Repeat([]byte{0xA5}, 40), {}, []byte("after the pad, odd length")}
	off := int64(segment.HeaderSize)
	for i, p := range recs {
		if i == 3 {
			m.pad, m.padExt = off, 48
			copy(m.img[off+segment.FrameHeaderSize:], "aborted bytes stay") // PAD bodies are not cleared
			segment.PutPad(m.img, seq, off, m.padExt)
			off += m.padExt
		}
		m.offs = append(m.offs, off)
		m.payload = append(m.payload, p)
		off = segment.PutFrame(m.img, seq, off, segment.TypeData, created+int64(i+1)*1000, p)
	}
	m.end = off
	segment.PutEnd(m.img, seq, off, created+second)
	f, err := segment.Seal(m.img, [segment.DigestSize]byte{9}, 0, created+2*second)
	if err != nil {
		t.Fatal(err)
	}
	m.footer = f
	m.path = filepath.Join(t.TempDir(), segment.FileName(seq))
	return m
}

// expectFlip says which finding a flipped bit in byte b must produce.
func (m *matrixSegment) expectFlip(b int64) (Class, int64) {
	at := testSize - segment.FooterSize
	switch {
	case b < segment.HeaderSize:
		if b < 8 {
			return Torn, 0 // magic
		}
		return Torn, 60 // the header checksum catches everything else
	case b >= at:
		if b-at < 8 {
			return Footer, at
		}
		return Footer, at + 124
	case b >= m.pad+segment.FrameHeaderSize && b < m.pad+m.padExt:
		return Footer, at // a PAD body is covered by the digest only
	case b >= m.pad && b < m.pad+m.padExt:
		return Torn, m.pad
	case b >= m.end+segment.FrameHeaderSize:
		return GarbageAfterEnd, b
	case b >= m.end:
		return Torn, m.end
	}
	for i, off := range m.offs {
		n := off + segment.FrameHeaderSize + int64(len(m.payload[i]))
		switch {
		case b >= off && b < n:
			return Torn, off
		case b >= n && b < off+segment.FrameSize(len(m.payload[i])):
			return Torn, b // alignment padding
		}
	}
	panic(fmt.Sprintf("byte %d is in no region", b))
}

// damagedRecord is the index of the record byte b belongs to, or -1.
func (m *matrixSegment) damagedRecord(b int64) int {
	for i, off := range m.offs {
		if b >= off && b < off+segment.FrameHeaderSize+int64(len(m.payload[i])) {
			return i
		}
	}
	return -1
}

// TestBitFlipMatrix flips every bit of the header, the frames and the
// footer of a small sealed segment, and one bit in every 61st byte of the
// zero area: each flip is reported once, in the right class, at the right
// offset, and a reader's walk still yields every record it did not touch.
func TestBitFlipMatrix(t *testing.T) {
	m := buildMatrix(t)
	if rep := checkBytes(t, m.path, m.img, Options{}); len(rep.Findings) != 0 {
		t.Fatalf("clean matrix segment:\n%s", summary(rep))
	}
	var bytesToFlip []int64
	for b := int64(0); b < m.end+segment.FrameHeaderSize; b++ {
		bytesToFlip = append(bytesToFlip, b)
	}
	for b := m.end + segment.FrameHeaderSize; b < testSize-segment.FooterSize; b += 61 {
		bytesToFlip = append(bytesToFlip, b)
	}
	for b := testSize - segment.FooterSize; b < testSize; b++ {
		bytesToFlip = append(bytesToFlip, b)
	}
	img := make([]byte, len(m.img))
	flips, readerRuns := 0, 0
	for _, b := range bytesToFlip {
		bits := []uint{0, 1, 2, 3, 4, 5, 6, 7}
		if b >= m.end+segment.FrameHeaderSize && b < testSize-segment.FooterSize {
			bits = []uint{uint(b % 8)}
		}
		for _, bit := range bits {
			copy(img, m.img)
			img[b] ^= 1 << bit
			flips++
			rep := checkBytes(t, m.path, img, Options{})
			class, off := m.expectFlip(b)
			if len(rep.Findings) != 1 || rep.Findings[0].Class != class || rep.Findings[0].Offset != off {
				t.Fatalf("bit %d of byte %d: want exactly %s at %d, got\n%s", bit, b, class, off, summary(rep))
			}
			if rep.ExitCode(false) != ExitFindings {
				t.Fatalf("bit %d of byte %d: exit %d", bit, b, rep.ExitCode(false))
			}
			got := records(img, m.seq)
			want := [][]byte{}
			for i, p := range m.payload {
				if i != m.damagedRecord(b) {
					want = append(want, p)
				}
			}
			if !equalRecords(got, want) {
				t.Fatalf("bit %d of byte %d: reader yields %q, want %q", bit, b, got, want)
			}
			// And through the real reader (tail -n +1): every flip of
			// the header (its records are still read, under the file
			// name's sequence), a sample of the others.
			if b < segment.HeaderSize || flips%9 == 0 {
				if got := readLog(t, m.path, img); !equalRecords(got, want) {
					t.Fatalf("bit %d of byte %d: pkg/reader yields %q, want %q", bit, b, got, want)
				}
				readerRuns++
			}
		}
	}
	t.Logf("%d bit flips checked, %d of them through pkg/reader too", flips, readerRuns)
}

// readLog writes img to path and reads every record of its directory
// with pkg/reader, skipping damage as `auditseg tail -n +1` does.
func readLog(t *testing.T, path string, img []byte) [][]byte {
	t.Helper()
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := reader.Open(filepath.Dir(path), reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for r.Next() {
		out = append(out, bytes.Clone(r.Record().Payload))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestTruncationMatrix cuts the segment file at every offset through the
// frames and the footer (a cut inside a length word or a footer field is
// not the same case as one on a frame boundary) and at a sample of the
// zero area between them: the cut is reported at its
// offset, a frame it splits is reported torn at the frame, and every record
// before the cut is still read.
func TestTruncationMatrix(t *testing.T) {
	m := buildMatrix(t)
	var cuts []int64
	for x := int64(0); x <= m.end+segment.FrameHeaderSize+8; x++ {
		cuts = append(cuts, x)
	}
	cuts = append(cuts, 4096, 40000)
	for x := testSize - segment.FooterSize - 8; x < testSize; x++ {
		cuts = append(cuts, x)
	}
	for _, x := range cuts {
		if err := os.WriteFile(m.path, m.img[:x], 0o640); err != nil {
			t.Fatal(err)
		}
		rep, err := Files([]string{m.path}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.ExitCode(false) != ExitFindings {
			t.Fatalf("cut at %d: exit %d\n%s", x, rep.ExitCode(false), summary(rep))
		}
		wantOff := x
		if x < segment.HeaderSize {
			wantOff = 0 // too short for a header
		}
		if !has(rep, Torn, m.seq, wantOff) {
			t.Fatalf("cut at %d: no torn finding at %d\n%s", x, wantOff, summary(rep))
		}
		if x < segment.HeaderSize {
			continue
		}
		var want [][]byte
		for i, off := range m.offs {
			end := off + segment.FrameHeaderSize + int64(len(m.payload[i]))
			switch {
			case end <= x:
				want = append(want, m.payload[i])
			case off < x && !has(rep, Torn, m.seq, off):
				t.Fatalf("cut at %d splits the frame at %d, not reported\n%s", x, off, summary(rep))
			}
		}
		// The segment as a reader sees it: the file padded to its size.
		img := make([]byte, testSize)
		copy(img, m.img[:x])
		if got := records(img, m.seq); !equalRecords(got, want) {
			t.Fatalf("cut at %d: reader yields %q, want %q", x, got, want)
		}
		if got := readLog(t, m.path, m.img[:x]); !equalRecords(got, want) {
			t.Fatalf("cut at %d: pkg/reader yields %q, want %q", x, got, want)
		}
		for _, f := range rep.Findings {
			// missing-end: a file shorter than its header says is
			// one recovery leaves as it is, not crash residue.
			if f.Class != Torn && f.Class != Unfinished && f.Class != Footer && f.Class != MissingEnd {
				t.Fatalf("cut at %d: unexpected class\n%s", x, summary(rep))
			}
		}
	}
}
