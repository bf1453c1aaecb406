package segment

import (
	"bytes"
	"errors"
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

// TestFileEndAt: EndAt, which reads a slot's frame header alone, says of
// every slot what DecodeFrame of the whole image says, a committed END
// frame or not: DATA frames, END, a damaged END, zeros, and offsets out
// of the record area or unaligned. HeaderFooter returns the header and
// footer the image holds. A file cut before the slot ends is an error.
func TestFileEndAt(t *testing.T) {
	fx := buildFixture(true)
	foot, err := Seal(fx.img, [DigestSize]byte{}, 0, 1_700_000_000_000_002_000)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := DecodeHeader(fx.img)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(fx.img)
	damaged[fx.end+9] ^= 1
	for i, img := range [][]byte{fx.img, damaged} {
		p := writeSegment(t, t.TempDir(), testSeq, img)
		f, err := OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h, ft, err := f.HeaderFooter()
		if err != nil || h != hdr || ft != foot {
			t.Fatalf("HeaderFooter: %+v, %+v, %v; want %+v, %+v", h, ft, err, hdr, foot)
		}
		offs := []int64{-8, 0, 8, 63, HeaderSize + 4, RecordLimit(testSize) - FrameHeaderSize + 8, testSize, 1 << 62}
		for off := int64(HeaderSize); off < RecordLimit(testSize); off += Alignment {
			offs = append(offs, off)
		}
		ends := 0
		for _, off := range offs {
			fr := DecodeFrame(img, testSeq, off)
			want := fr.State == Committed && fr.Type == TypeEnd
			if got, err := f.EndAt(h, off); got != want || err != nil {
				t.Fatalf("EndAt %d: %v, %v; DecodeFrame says %v (%v)", off, got, err, want, fr.State)
			}
			if want {
				ends++
			}
		}
		if want := 1 - i; ends != want {
			t.Errorf("%d END frames found; want %d", ends, want)
		}
	}
	p := writeSegment(t, t.TempDir(), testSeq, fx.img)
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(p, fx.end+10); err != nil {
		t.Fatal(err)
	}
	var ce *ChangedError
	if _, err := f.EndAt(hdr, fx.end); !errors.As(err, &ce) || ce.Off != fx.end+10 {
		t.Errorf("EndAt of a file cut inside the slot: %v; want a *ChangedError at %d", err, fx.end+10)
	}
}
