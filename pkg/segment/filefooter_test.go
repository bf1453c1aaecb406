package segment

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
)

// A mapped segment file longer than its header says keeps the mapping
// past Data's length (fitToHeader only shortens the slice), and
// FileFooter reads the footer the file ends with from there. Truncated
// before that read, the file faulted outside the range Image.Guard
// watched: the fault was not taken for the file's, and the panic killed
// the process (verify maps every file whose size disagrees with its
// header). It is the file's error, as for a read of Data: the file and
// the offset that had no data. Run in a child process, as a crash would
// kill the test binary.
func TestFileFooterPastHeaderSizeIsGuarded(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	img := NewImage(testSeq, 2*testSize, 1_600_000_000_000_000_000)
	off := PutFrame(img, testSeq, HeaderSize, TypeData, testTimes[0], testPayloads[0])
	PutEnd(img, testSeq, off, 1_700_000_000_000_001_000)
	if _, err := Seal(img, [DigestSize]byte{}, 0, 1_700_000_000_000_002_000); err != nil {
		t.Fatal(err)
	}
	h, err := DecodeHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	h.Size = testSize // the header claims half the file
	h.Encode(img)
	p := filepath.Join(t.TempDir(), FileName(testSeq))
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	var ferr error
	if gerr := im.Guard(func() { _, ferr = im.FileFooter() }); gerr != nil || ferr != nil {
		t.Fatalf("FileFooter of the whole file: %v, %v", gerr, ferr)
	}
	if err := os.Truncate(p, testSize); err != nil {
		t.Fatal(err)
	}
	gerr := im.Guard(func() { _, _ = im.FileFooter() })
	var ce *ChangedError
	if !errors.As(gerr, &ce) || ce.Path != p || ce.Off < testSize || ce.Off >= 2*testSize {
		t.Fatalf("FileFooter of the file cut to its header's size: %v; want a ChangedError naming %s at an offset in [%d, %d)", gerr, p, testSize, 2*testSize)
	}
}
