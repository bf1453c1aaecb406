package verify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestWindowReadsEachByteAboutOnce: the window is moved on only when a
// frame runs past its end, not at every slot the walker takes over. A
// sealed segment with a damaged record every 50 was read ~30 times over
// (a 1 MiB pread at every damaged frame).
func TestWindowReadsEachByteAboutOnce(t *testing.T) {
	const seq, size = 1, 8 << 20
	img := segment.NewImage(seq, size, baseCreated)
	off := int64(segment.HeaderSize)
	var offs []int64
	for i := 0; off+segment.FrameSize(100) <= segment.DataLimit(size); i++ {
		offs = append(offs, off)
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), bytes.Repeat([]byte{'r'}, 100))
	}
	segment.PutEnd(img, seq, off, baseCreated+second)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(offs); i += 50 {
		img[offs[i]+segment.FrameHeaderSize+5] ^= 1 // torn: its CRC fails
	}
	path := filepath.Join(t.TempDir(), segment.FileName(seq))
	src := &countingReaderAt{r: bytes.NewReader(img)}
	w := &window{src: src, buf: make([]byte, 256<<10)}
	got := checkThrough(path, img, Options{}, w)
	if want := checkThrough(path, img, Options{}, nil); !reflect.DeepEqual(got, want) {
		t.Fatalf("through the window:\n%s\nthrough the mapping:\n%s", summary(got), summary(want))
	}
	if got.Totals.Findings[Torn] == 0 {
		t.Fatal("no finding: the damage did not take")
	}
	if src.bytes > 2*size {
		t.Fatalf("read %d MiB through the window (%d reads) for a %d MiB segment", src.bytes>>20, src.reads, size>>20)
	}
}

type countingReaderAt struct {
	r            *bytes.Reader
	reads, bytes int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.reads++
	c.bytes += int64(n)
	return n, err
}

// TestLargeSegmentDigest: the digest and records of a sealed segment file
// are checked the same whichever way verify reads it: copied whole into a
// job's buffer (up to windowSize, hashed on its own goroutine from
// parallelDigest up) or through the window (larger files), the digest
// hashed on the way or, with a core to spare (one segment, two jobs), by
// digestAhead.
func TestLargeSegmentDigest(t *testing.T) {
	for _, size := range []int64{parallelDigest, 16 * windowSize} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { checkLargeDigest(t, size) })
	}
}

func checkLargeDigest(t *testing.T, size int64) {
	dir := t.TempDir()
	img := segment.NewImage(1, size, baseCreated)
	off := int64(segment.HeaderSize)
	for i := 0; i < 1000; i++ {
		off = segment.PutFrame(img, 1, off, segment.TypeData, baseCreated+int64(i), []byte(fmt.Sprint("record ", i)))
	}
	// A record larger than the window: read through the mapping.
	off = segment.PutFrame(img, 1, off, segment.TypeData, baseCreated+1000, bytes.Repeat([]byte{'L'}, int(min(size/8, windowSize+100))))
	segment.PutEnd(img, 1, off, baseCreated+second)
	f, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, segment.FileName(1))
	for _, bad := range []bool{false, true} {
		g := f
		if bad {
			g.Digest[31] ^= 1
		}
		g.Encode(img[size-segment.FooterSize:])
		if err := os.WriteFile(p, img, 0o640); err != nil {
			t.Fatal(err)
		}
		for _, jobs := range []int{1, 2} {
			rep := mustDir(t, dir, Options{Workers: jobs})
			s := rep.Segments[0]
			if s.Records != 1001 || !s.DigestChecked || s.DigestOK == bad || has(rep, Footer, 1, size-segment.FooterSize) != bad || len(rep.Findings) != map[bool]int{false: 0, true: 1}[bad] {
				t.Fatalf("bad digest %v, %d jobs: %+v\n%s", bad, jobs, s, summary(rep))
			}
		}
	}
	// digestAhead's reads failing part way: the digest is still the
	// segment's (the rest read through the mapping), and the error names
	// where the read failed.
	eio := errors.New("input/output error")
	from := f.EndOffset / 2
	d, err := digestAhead(&failingReaderAt{r: bytes.NewReader(img), from: from, err: eio}, img, f)
	if want := segment.Digest(f.PrevDigest, img, f.EndOffset); d != want || !errors.Is(err, eio) || !strings.Contains(err.Error(), "offset ") {
		t.Fatalf("digestAhead with a read error at %d: digest ok %v, error %v", from, d == want, err)
	}
}

// TestZeroTailThroughWindow: the zeros after the last frame of a segment
// not sealed (all of the segment a writer prepares ahead) are read
// through the window, not the mapping, which would keep them resident:
// verify's peak memory grew by a segment for every such file. The test's
// mapping holds a byte the file does not, far into the tail: judged
// through the window, the segment is what the file holds.
func TestZeroTailThroughWindow(t *testing.T) {
	const seq, size = 1, 4 << 20
	img := segment.NewImage(seq, size, baseCreated)
	off := int64(segment.HeaderSize)
	for i := range 10 {
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), []byte("record"))
	}
	path := filepath.Join(t.TempDir(), segment.FileName(seq))
	want := checkThrough(path, img, Options{}, nil)
	if want.Totals.Records != 10 {
		t.Fatalf("through the mapping:\n%s", summary(want))
	}
	mapped := bytes.Clone(img)
	mapped[size/2] = 1
	if bad := checkThrough(path, mapped, Options{}, nil); reflect.DeepEqual(bad, want) {
		t.Fatalf("a non-zero byte in the tail went unnoticed through the mapping:\n%s", summary(bad))
	}
	for _, quick := range []bool{false, true} {
		src := &countingReaderAt{r: bytes.NewReader(img)}
		w := &window{src: src, buf: make([]byte, 256<<10)}
		got := checkThrough(path, mapped, Options{Quick: quick}, w)
		if want := checkThrough(path, img, Options{Quick: quick}, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("quick %v: through the window:\n%s\nthrough the mapping of the file:\n%s", quick, summary(got), summary(want))
		}
		if tail := size - off; src.bytes < tail {
			t.Fatalf("quick %v: read %d bytes through the window, the zero tail is %d", quick, src.bytes, tail)
		}
	}
}

// TestWindowReadError: an I/O error under the window is the segment's
// error (exit 2), named with its offset, not dropped: the mapping read
// after it may fault ("changed while it was read") or, if the error was
// passing, succeed and hide it.
func TestWindowReadError(t *testing.T) {
	m := buildMatrix(t)
	// Not sealed, the window reads only the zeros after the last frame.
	open := segment.NewImage(m.seq, testSize, baseCreated)
	end := segment.PutFrame(open, m.seq, segment.HeaderSize, segment.TypeData, baseCreated, []byte("record"))
	eio := errors.New("input/output error")
	for _, sealed := range []bool{true, false} {
		img, from := m.img, int64(segment.HeaderSize+100)
		if !sealed {
			img, from = open, end+4096
		}
		im := &segment.Image{Path: m.path, Data: img, FileSize: int64(len(img))}
		im.Header, im.HeaderErr = segment.DecodeHeader(img)
		o := Options{}.withDefaults()
		r := newResult(m.path, &o)
		src := &failingReaderAt{r: bytes.NewReader(img), from: from, err: eio}
		checkGuarded(im, r, &o, &window{src: src, buf: make([]byte, 256)})
		if !errors.Is(r.ioErr, eio) || r.rep.State != StateUnreadable ||
			!strings.Contains(r.rep.Error, m.path) || !strings.Contains(r.rep.Error, "at offset ") {
			t.Fatalf("sealed %v: state %v, error %q (%v); want the read error, with the file and offset", sealed, r.rep.State, r.rep.Error, r.ioErr)
		}
	}
}

// failingReaderAt fails every read that reaches from or beyond.
type failingReaderAt struct {
	r    *bytes.Reader
	from int64
	err  error
}

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.from {
		n := max(f.from-off, 0)
		m, _ := f.r.ReadAt(p[:n], off)
		return m, f.err
	}
	return f.r.ReadAt(p, off)
}
