package segment

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// A File reads the file it opened, whatever its name names since: its
// footer, and the image copied or mapped after it, are one file's even
// when another segment is renamed over it in between. OpenFile refuses
// an archive, whose bytes are not the segment's.
func TestFileReadsOneFile(t *testing.T) {
	dir := t.TempDir()
	img, foot := sealedFixture(t, [DigestSize]byte{})
	p := writeSegment(t, dir, testSeq, img)
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	other := NewImage(testSeq, testSize, 2) // not sealed
	if err := os.WriteFile(p+".new", other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if ft, err := f.Footer(); err != nil || ft != foot {
		t.Fatalf("Footer: %+v, %v; want %+v", ft, err, foot)
	}
	for _, buf := range [][]byte{make([]byte, testSize), make([]byte, 100)} {
		im, err := f.ReadImage(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(im.Data, img) || im.Path != p || f.Path() != p {
			t.Errorf("%d-byte buffer: not the file opened, or another path (%s)", len(buf), im.Path)
		}
		if ft, err := im.Footer(); err != nil || ft != foot {
			t.Errorf("%d-byte buffer: image footer %+v, %v", len(buf), ft, err)
		}
		im.Close()
	}
	if _, err := OpenFile(dir + "/" + ArchiveName(testSeq)); err == nil || !strings.HasPrefix(err.Error(), dir) {
		t.Errorf("OpenFile of an archive: %v; want an error naming it", err)
	}
}
