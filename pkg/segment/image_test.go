package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenImageValid(t *testing.T) {
	dir := t.TempDir()
	img, foot := sealedFixture(t, [DigestSize]byte{})
	p := writeSegment(t, dir, testSeq, img)
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.Check(); err != nil {
		t.Fatal(err)
	}
	if im.Path != p || im.Archived || im.FileSize != testSize || int64(len(im.Data)) != testSize ||
		im.Header.Seq != testSeq || im.Header.Size != testSize || im.HeaderErr != nil {
		t.Fatalf("image %+v", im)
	}
	if !bytes.Equal(im.Data, img) {
		t.Fatal("data differs from the file")
	}
	if f, err := im.Footer(); err != nil || f != foot {
		t.Fatalf("footer %+v, %v", f, err)
	}
	want, _ := evs(img, testSeq, HeaderSize, Quiescent)
	var got []string
	stop := im.Walk(HeaderSize, Quiescent, func(ev Event) bool { got = append(got, ev.Kind.String()); return true })
	if strings.Count(want, "frame@") != 5 || len(got) != 6 || stop != foot.EndOffset {
		t.Fatalf("walk %v stop %d; want %s", got, stop, want)
	}
	if err := im.Close(); err != nil || im.Data != nil {
		t.Fatal("Close", err)
	}
	if err := im.Close(); err != nil {
		t.Fatal("second Close", err)
	}
}

func TestOpenImageUnsealed(t *testing.T) {
	p := writeSegment(t, t.TempDir(), testSeq, buildFixture(false).img)
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := im.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Footer(); !errors.Is(err, ErrNoFooter) {
		t.Fatalf("footer of an unsealed segment: %v", err)
	}
}

func TestOpenImageTruncated(t *testing.T) {
	img, _ := sealedFixture(t, [DigestSize]byte{})
	const keep = 4096
	p := writeSegment(t, t.TempDir(), testSeq, img[:keep])
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.FileSize != keep || int64(len(im.Data)) != testSize || im.HeaderErr != nil {
		t.Fatalf("file %d, data %d, header err %v", im.FileSize, len(im.Data), im.HeaderErr)
	}
	if !bytes.Equal(im.Data[:keep], img[:keep]) || !isZero(im.Data[keep:]) {
		t.Fatal("truncated image is not the file padded with zeros")
	}
	err = im.Check()
	wantCorrupt(t, err, keep, "file is 4096 bytes, header says 65536")
	if !strings.HasPrefix(err.Error(), p+": ") {
		t.Fatalf("error %q does not name the file", err)
	}
	// The frames in the kept part are still readable (END's CRC covers its
	// header only); the footer is gone.
	got, _ := evs(im.Data, testSeq, HeaderSize, Quiescent)
	if want, _ := evs(img, testSeq, HeaderSize, Quiescent); got != want {
		t.Fatalf("walk of a truncated segment: %s, want %s", got, want)
	}
	if _, err := im.Footer(); !errors.Is(err, ErrNoFooter) {
		t.Fatalf("footer: %v", err)
	}
}

func TestOpenImageTooLong(t *testing.T) {
	img, foot := sealedFixture(t, [DigestSize]byte{})
	p := writeSegment(t, t.TempDir(), testSeq, append(bytes.Clone(img), "extra bytes"...))
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.FileSize != testSize+11 || int64(len(im.Data)) != testSize {
		t.Fatalf("file %d data %d", im.FileSize, len(im.Data))
	}
	wantCorrupt(t, im.Check(), testSize, "file is 65547 bytes, header says 65536")
	if f, err := im.Footer(); err != nil || f != foot {
		t.Fatalf("footer at the header's size: %+v %v", f, err)
	}
}

func TestOpenImageSeqMismatch(t *testing.T) {
	dir := t.TempDir()
	img := buildFixture(true).img
	p := filepath.Join(dir, FileName(testSeq+1))
	if err := os.WriteFile(p, img, 0o640); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	wantCorrupt(t, im.Check(), 16, "header sequence 7 does not match the file name")
	// Any other name is not checked against.
	q := filepath.Join(dir, "copy-for-inspection")
	if err := os.WriteFile(q, img, 0o640); err != nil {
		t.Fatal(err)
	}
	im2, err := OpenImage(q)
	if err != nil {
		t.Fatal(err)
	}
	defer im2.Close()
	if err := im2.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenImageBadHeader(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		data   []byte
		off    int64
		reason string
	}{
		{"empty", nil, 0, "too short"},
		{"short", []byte("AUDITSEG"), 0, "too short"},
		{"not a segment", bytes.Repeat([]byte("hello\n"), 20000), 0, "bad magic"},
		{"header crc", func() []byte { b := buildFixture(true).img; b[20] ^= 1; return b }(), 60, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSegment(t, dir, 1, tc.data)
			im, err := OpenImage(p)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.FileSize != int64(len(tc.data)) || len(im.Data) != len(tc.data) {
				t.Fatalf("file %d data %d", im.FileSize, len(im.Data))
			}
			wantCorrupt(t, im.HeaderErr, tc.off, tc.reason)
			if err := im.Check(); err != im.HeaderErr || !strings.HasPrefix(err.Error(), p+": ") {
				t.Fatalf("Check = %v", err)
			}
			if _, err := im.Footer(); err != im.HeaderErr {
				t.Fatalf("Footer = %v", err)
			}
			called := false
			if im.Walk(HeaderSize, Quiescent, func(Event) bool { called = true; return true }) != HeaderSize || called {
				t.Fatal("walked an image with a bad header")
			}
		})
	}
}

func TestOpenImageNotAFile(t *testing.T) {
	dir := t.TempDir()
	real := writeSegment(t, dir, 1, buildFixture(true).img)

	link := filepath.Join(dir, FileName(2))
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	_, err := OpenImage(link)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), link) {
		t.Fatalf("symlink: %v", err)
	}

	_, err = OpenImage(filepath.Join(dir, FileName(3)))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), FileName(3)) {
		t.Fatalf("missing: %v", err)
	}

	sub := filepath.Join(dir, FileName(4))
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenImage(sub); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: %v", err)
	}

	// A FIFO must not block the open (nothing will ever write to it).
	fifo := filepath.Join(dir, FileName(5))
	if err := unix.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenImage(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("fifo: %v", err)
	}

	// Larger than any segment: refused before mapping (a sparse file).
	big := filepath.Join(dir, FileName(6))
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxSegmentSize + 8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := OpenImage(big); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), big) {
		t.Fatalf("oversized: %v", err)
	}
}

// TestReadImage: a segment read into a buffer is the image OpenImage maps,
// header checks and all; a truncated file reads as truncated; a buffer too
// small falls back to the mapping; Reopen refuses a file replaced since.
func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	img, foot := sealedFixture(t, [DigestSize]byte{})
	p := writeSegment(t, dir, testSeq, img)
	buf := make([]byte, 2*testSize)
	im, err := ReadImage(p, buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Check(); err != nil || !bytes.Equal(im.Data, img) || &im.Data[0] != &buf[0] {
		t.Fatalf("Check %v; data equal %v; in buf %v", err, bytes.Equal(im.Data, img), &im.Data[0] == &buf[0])
	}
	if f, err := im.Footer(); err != nil || f != foot {
		t.Fatalf("footer %+v, %v", f, err)
	}
	im.Close()

	small, err := ReadImage(p, make([]byte, 100))
	if err != nil || !bytes.Equal(small.Data, img) {
		t.Fatalf("small buffer: %v", err)
	}
	small.Close()

	short := filepath.Join(t.TempDir(), FileName(testSeq))
	if err := os.WriteFile(short, img[:testSize/2], 0o644); err != nil {
		t.Fatal(err)
	}
	im, err = ReadImage(short, buf)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.FileSize != testSize/2 || int64(len(im.Data)) != testSize || im.Check() == nil {
		t.Fatalf("truncated: file %d bytes, data %d, Check %v", im.FileSize, len(im.Data), im.Check())
	}

	if err := os.Rename(short, p); err != nil {
		t.Fatal(err)
	}
	again, err := ReadImage(filepath.Join(dir, FileName(testSeq)), buf)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := again.Reopen(); err != nil {
		t.Fatalf("Reopen of an unchanged file: %v", err)
	} else {
		f.Close()
	}
	if err := os.WriteFile(p+".new", img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if f, err := again.Reopen(); err == nil {
		f.Close()
		t.Fatal("Reopen opened a file that replaced the one read")
	}
}

var faultSink byte // a load the compiler cannot drop

// faultOffset tells a fault inside a mapping whose file shrank (with its
// offset) from any other fault, such as a nil pointer dereference.
func TestFaultOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 64<<10), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := MapFile(f, 64<<10, false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(m)
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	recovered := func(fn func()) (p any) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { p = recover() }()
		fn()
		return nil
	}
	p := recovered(func() { faultSink = m[40000] })
	if off, ok := faultOffset(p, m); !ok || off != 40000 {
		t.Errorf("fault past the new end: faultOffset = %d, %v; want 40000, true (panic %v)", off, ok, p)
	}
	var nilp *int
	p = recovered(func() { _ = *nilp })
	if _, ok := faultOffset(p, m); ok || p == nil {
		t.Errorf("nil pointer dereference counted as a fault in the mapping (panic %v)", p)
	}
	if _, ok := faultOffset("not a fault", m); ok {
		t.Error("a plain panic value counted as a fault")
	}

	// Guard: the fault in the mapping comes back as a *MappingFault at its
	// offset; a nil pointer dereference still panics.
	var mf *MappingFault
	if err := Guard(m, func() { faultSink = m[40000] }); !errors.As(err, &mf) || mf.Off != 40000 {
		t.Errorf("Guard of a read past the new end = %v; want a *MappingFault at 40000", err)
	}
	if err := Guard(m, func() { faultSink = m[100] }); err != nil {
		t.Errorf("Guard of a read inside the file = %v", err)
	}
	if p := recovered(func() { _ = Guard(m, func() { _ = *nilp }) }); p == nil {
		t.Error("Guard swallowed a nil pointer dereference")
	}
}

// A segment file truncated after OpenImage's fstat and mapping, before
// its header is read or a short file copied, costs an error naming the
// file and the offset that had no data, not the process. The test cuts
// the file at that point of OpenImage's steps: mapOpen, then
// decodeMapped.
func TestOpenImageTruncatedWhileMapped(t *testing.T) {
	dir := t.TempDir()
	short := NewImage(testSeq, 2*testSize, 1)[:testSize] // header says 128 KiB
	for _, tc := range []struct {
		what string
		img  []byte
		cut  int64
		// The fault's offset lies in [from, to): copy may load the end
		// of its source first (memmove does), so any missing page.
		from, to int64
	}{
		{"header", NewImage(testSeq, testSize, 1), 0, 0, HeaderSize},
		{"short file's copy", short, 4096, 4096, testSize},
	} {
		p := writeSegment(t, dir, testSeq, tc.img)
		im := &Image{Path: p}
		f, err := OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		err = im.mapOpen(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, tc.cut); err != nil {
			t.Fatal(err)
		}
		err = im.decodeMapped()
		if err == nil {
			im.Close()
			t.Fatalf("%s: no error", tc.what)
		}
		_, at, _ := strings.Cut(err.Error(), "no data at offset ")
		off, perr := strconv.ParseInt(at, 10, 64)
		if !strings.HasPrefix(err.Error(), p+": ") || perr != nil || off < tc.from || off >= tc.to {
			t.Errorf("%s: %v; want the file named, and an offset in [%d, %d)", tc.what, err, tc.from, tc.to)
		}
		if im.Data != nil || im.release != nil {
			t.Errorf("%s: the image was not released", tc.what)
		}
	}
}

// Image.Guard turns a fault in the image's mapping into the error every
// reader of segments reports (the file, the offset that had no data),
// still a *MappingFault to errors.As; any other fault still panics, so a
// bug cannot pass for a file that shrank.
func TestImageGuard(t *testing.T) {
	p := writeSegment(t, t.TempDir(), testSeq, NewImage(testSeq, testSize, 1))
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := os.Truncate(p, 4096); err != nil {
		t.Fatal(err)
	}
	at := int64(testSize - FooterSize)
	err = im.Guard(func() { faultSink = im.Data[at] })
	var mf *MappingFault
	// The fault is at, the data stops at the file's new end.
	want := fmt.Sprintf("%s: changed while it was read (truncated?): no data at offset 4096", p)
	if err == nil || err.Error() != want || !errors.As(err, &mf) || mf.Off != at {
		t.Errorf("Guard of a read past the new end = %v; want %q, a *MappingFault at %d", err, want, at)
	}
	if err := im.Guard(func() { faultSink = im.Data[100] }); err != nil {
		t.Errorf("Guard of a read inside the file = %v", err)
	}
	// The reader guards every refill and every poll of a follower.
	if n := testing.AllocsPerRun(100, func() { _ = im.Guard(func() { faultSink = im.Data[100] }) }); n != 0 {
		t.Errorf("Guard without a fault: %v allocations a call, want 0", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("a nil pointer dereference inside Guard did not panic")
		}
	}()
	var nilp *int
	_ = im.Guard(func() { _ = *nilp })
}
