package verify

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// windowedFileSize is the segment of the real-file window tests: 16
// windows, so that a view is released many times over.
const windowedFileSize = 16 * windowSize

// windowedImage is a sealed segment of windowedFileSize bytes: records
// of recordSize(i) bytes up to three quarters of it, then END. It returns
// the image and the records' offsets.
func windowedImage(t *testing.T, recordSize func(i int) int) ([]byte, []int64) {
	t.Helper()
	const seq = 1
	img := segment.NewImage(seq, windowedFileSize, baseCreated)
	off := int64(segment.HeaderSize)
	var offs []int64
	for i := 0; off < windowedFileSize*3/4; i++ {
		p := fmt.Appendf(nil, "record %d ", i)
		offs = append(offs, off)
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseCreated+int64(i), append(p, bytes.Repeat([]byte{'x'}, recordSize(i))...))
	}
	segment.PutEnd(img, seq, off, baseCreated+second)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second); err != nil {
		t.Fatal(err)
	}
	return img, offs
}

// intactWindowedFile writes windowedImage's segment to a file and
// returns its path and its report through the mapping alone, which it
// checks is a pass.
func intactWindowedFile(t *testing.T, recordSize func(i int) int) (string, *Report) {
	t.Helper()
	img, offs := windowedImage(t, recordSize)
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	want, _ := checkFileAs(t, path, Options{}, nil, 0)
	if len(want.Findings) != 0 || want.Totals.Records != uint64(len(offs)) {
		t.Fatalf("through the mapping:\n%s", summary(want))
	}
	return path, want
}

// oneLarge is a record size: about 1 KiB, but the 5000th larger than
// the window.
func oneLarge(i int) int {
	if i == 5000 {
		return windowSize + 100
	}
	return 1000 + i%17
}

// checkFileAs is checkFile of the segment file at path read through a
// window whose mode is forced, with buf as its copy buffer (nil: through
// the mapping alone), placed in a report as checkThrough does. It also returns how
// much of the segment's mapping was resident when the check ended.
func checkFileAs(t *testing.T, path string, o Options, buf []byte, mode segment.ReadMode) (*Report, int64) {
	t.Helper()
	o = o.withDefaults()
	r := newResult(path, &o)
	im, src, _, err := openImage(path, &o, buf)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var w *window
	if src != nil {
		w = &window{buf: buf, src: src, file: src, im: im, mode: mode}
		defer w.close()
	}
	checkGuarded(im, r, &o, w)
	rss := testfs.MappedRSS(t, im.Data)
	u := &unit{dir: filepath.Dir(path), whole: true, results: []*result{r}}
	rep := newReport(&o)
	place(context.Background(), u, rep)
	return rep, rss
}

// TestWindowModesOnFiles: a real segment file, sealed and 16 windows
// long, intact or damaged, is judged the same through the mapping alone,
// through views of it (released as the window passes), through copies,
// and through the window that probes and chooses, the digest hashed on
// the way or by digestAhead (a core to spare). The matrix tests read
// heap images, whose views are never released. And a job reading through
// views keeps only a few MiB of the mapping resident.
func TestWindowModesOnFiles(t *testing.T) {
	img, offs := windowedImage(t, oneLarge)
	big := offs[5000]
	ft, err := segment.DecodeFooter(img, segment.Header{Seq: 1, Size: windowedFileSize})
	if err != nil {
		t.Fatal(err)
	}
	damage := map[string]func(b []byte){
		"intact": func([]byte) {},
		"torn record in the third window": func(b []byte) {
			for _, off := range offs {
				if off > 2*windowSize+windowSize/2 {
					b[off+segment.FrameHeaderSize+3] ^= 1
					return
				}
			}
		},
		"torn record larger than the window": func(b []byte) { b[big+segment.FrameHeaderSize+windowSize/2] ^= 1 },
		"zeroed frame header":                func(b []byte) { clear(b[offs[9000] : offs[9000]+segment.FrameHeaderSize]) },
		"digest": func(b []byte) {
			g := ft
			g.Digest[0] ^= 1
			g.Encode(b[windowedFileSize-segment.FooterSize:])
		},
		"garbage after END": func(b []byte) { b[windowedFileSize-segment.FooterSize-100] = 1 },
	}
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	for name, spoil := range damage {
		b := bytes.Clone(img)
		spoil(b)
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		for _, spare := range []bool{false, true} {
			o := Options{spareCore: spare}
			want, _ := checkFileAs(t, path, o, nil, 0)
			if (name == "intact") != (len(want.Findings) == 0) || want.Totals.Records == 0 {
				t.Fatalf("%s: through the mapping:\n%s", name, summary(want))
			}
			for _, mode := range []segment.ReadMode{viewProbe, viewing, copying} {
				got, rss := checkFileAs(t, path, o, make([]byte, windowSize), mode)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, spare core %v, mode %d:\n%s\nthrough the mapping:\n%s", name, spare, mode, summary(got), summary(want))
				}
				if mode == viewing && rss > 4*windowSize {
					t.Errorf("%s, spare core %v: %d KiB of the %d KiB mapping resident after a check through views",
						name, spare, rss>>10, int64(windowedFileSize)>>10)
				}
			}
		}
	}
}

// TestWindowModesTruncatedFile: a segment file cut short after verify
// mapped it, read through views, copies or the probing window, is an
// unreadable segment whose error names the file: never a crash, never a
// pass. Run in a child process, where a fault not turned into an error
// fails this test alone.
func TestWindowModesTruncatedFile(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	img, _ := windowedImage(t, oneLarge)
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	for _, cut := range []int64{3*windowSize + 100, windowedFileSize - 2*windowSize} {
		for _, spare := range []bool{false, true} {
			for _, mode := range []segment.ReadMode{viewProbe, viewing, copying} {
				r := checkCutAfterMap(t, path, img, cut, Options{spareCore: spare}, make([]byte, windowSize), mode)
				if r.rep.State != StateUnreadable || r.ioErr == nil || !strings.Contains(r.rep.Error, path) {
					t.Errorf("cut at %d, spare core %v, mode %d: state %v, error %q; want unreadable, naming the file",
						cut, spare, mode, r.rep.State, r.rep.Error)
				}
			}
		}
	}
}

// TestViewsReleasedBehindLargeRecords: records larger than the window
// are read through the mapping by the walker. It read up to 256 frames
// at a time so, and the window released them before the digest read
// them again, which mapped them for good: a segment of such records was
// resident whole, at the peak and after (14 of 16 MiB), through views
// and through copies alike. Now the walker reads such a frame alone, and
// the window hashes what it leaves before releasing it, in either mode.
func TestViewsReleasedBehindLargeRecords(t *testing.T) {
	path, want := intactWindowedFile(t, func(int) int { return windowSize + 100 })
	// The copy buffer is resident before the peak is taken, so the peak
	// is what the check adds (under -race the buffer's shadow is several
	// times its size: the peak went 56 KiB over the bound in CI).
	buf := make([]byte, windowSize)
	for i := range buf {
		buf[i] = 1
	}
	for _, mode := range []segment.ReadMode{viewProbe, viewing, copying} {
		runtime.GC()
		peak := testfs.PeakRSSFrom(t)
		got, rss := checkFileAs(t, path, Options{}, buf, mode)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("mode %d:\n%s\nthrough the mapping:\n%s", mode, summary(got), summary(want))
		}
		// At the peak: the window, the record read through the mapping,
		// and the 2 MiB blocks around them not yet released (the file's
		// pages may be mapped 2 MiB at a time); and the heap's noise.
		p := peak()
		t.Logf("mode %d: rss %d KiB peak %d KiB", mode, rss>>10, p>>10)
		if rss > 4*windowSize || p > 8*windowSize {
			t.Errorf("mode %d: %d KiB of the %d KiB mapping resident after the check, the process's peak %d KiB higher",
				mode, rss>>10, int64(windowedFileSize)>>10, p>>10)
		}
	}
}

// The read modes the tests force on a window.
const (
	viewProbe = segment.ReadProbe
	viewing   = segment.ReadViews
	copying   = segment.ReadCopies
)
