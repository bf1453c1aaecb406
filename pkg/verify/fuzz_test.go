package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// FuzzVerify feeds arbitrary bytes to verify and inspect as a segment file:
// they must never panic, and the Go heap they use must stay bounded
// whatever the bytes claim (segment images are mappings, findings are
// capped).
func FuzzVerify(f *testing.F) {
	m := buildMatrix(f)
	f.Add(m.img)
	f.Add(m.img[:4096])
	f.Add(m.img[:segment.HeaderSize])
	f.Add([]byte{})
	f.Add([]byte("AUDITSEG"))
	open := build(1, payloads(1, 30), false)
	f.Add(open.img)
	torn := append([]byte(nil), m.img...)
	for i := segment.HeaderSize + 13; i < len(torn)-segment.FooterSize; i += 97 {
		torn[i] ^= 0x5A
	}
	f.Add(torn)
	// A valid header claiming a larger segment than the file holds.
	big := make([]byte, 256)
	segment.Header{Seq: 1, Size: 1 << 20, Created: baseCreated}.Encode(big)
	f.Add(big)
	dir := f.TempDir()
	path := filepath.Join(dir, segment.FileName(1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, err := Files([]string{path}, Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		in, err := Inspect(path)
		if err != nil {
			t.Fatal(err)
		}
		slots := 0
		if err := in.Slots(func(Slot) bool { slots++; return true }); err != nil {
			t.Fatal(err)
		}
		in.Close()
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 8<<20 {
			t.Fatalf("verify of %d bytes allocated %d bytes", len(data), grown)
		}
		switch c := rep.ExitCode(false); c {
		case ExitClean, ExitFindings, ExitUnfinished:
		default:
			t.Fatalf("exit code %d for a readable file", c)
		}
		if len(rep.Segments) != 1 || len(rep.Findings) > 4*DefaultMaxFindings {
			t.Fatalf("%d segments, %d findings", len(rep.Segments), len(rep.Findings))
		}
		for _, fd := range rep.Findings {
			if fd.Offset < 0 || fd.Bytes < 0 || fd.Reason == "" {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}

// FuzzWindow damages the record area of a sealed segment, whose header
// and footer stay intact so that the check reads it through a window
// (window.go), and checks that windows of any size find exactly what the
// mapping does.
func FuzzWindow(f *testing.F) {
	m := buildMatrix(f)
	f.Add(uint16(0), []byte{}, uint16(64))
	f.Add(uint16(segment.HeaderSize+3), []byte{0xFF}, uint16(100))
	f.Add(uint16(m.end), []byte{0, 0, 0, 0x19}, uint16(24))
	f.Add(uint16(m.end+40), []byte{1}, uint16(4096))
	f.Add(uint16(m.pad), []byte{0x30, 0, 0, 0x80}, uint16(33))
	img := make([]byte, len(m.img))
	f.Fuzz(func(t *testing.T, at uint16, x []byte, win uint16) {
		copy(img, m.img)
		lo, hi := int64(segment.HeaderSize), segment.RecordLimit(int64(len(img)))
		for i, b := range x {
			if p := lo + (int64(at)+int64(i))%(hi-lo); p < hi {
				img[p] ^= b
			}
		}
		want := checkThrough(m.path, img, Options{}, nil)
		view := &segment.Image{Data: img, FileSize: int64(len(img))}
		for _, mode := range []segment.ReadMode{copying, viewing} {
			w := &window{src: bytes.NewReader(img), buf: make([]byte, max(1, int(win))), im: view, mode: mode}
			if got := checkThrough(m.path, img, Options{}, w); !reflect.DeepEqual(got, want) {
				t.Fatalf("through a window of %d bytes, mode %d:\n%s\nthrough the mapping:\n%s", win, mode, summary(got), summary(want))
			}
		}
	})
}
