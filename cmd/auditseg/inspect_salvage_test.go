package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestInspectDamagedArchive: an archive one of whose zstd blocks does
// not decode is dumped as far as it decodes, as verify and tail read it
// (segment.OpenSalvaged), with the damage named and what was lost shown
// as a cut segment's missing bytes are (TestInspectShortArchive). inspect
// refused it ("cannot decompress the zstd block ...", exit 2), though
// damage is what it is for.
func TestInspectDamagedArchive(t *testing.T) {
	dir := t.TempDir()
	img, off := salvageImage(t)
	size := int64(len(img))
	p := filepath.Join(dir, segment.ArchiveName(1))
	ad := writeDamagedArchive(t, p, img, off)
	footerAt := segment.RecordLimit(size)
	footer := fmt.Sprintf("footer   MISSING: the archive's content is lost from %d, before the footer at %d (the header says %d bytes): ", ad.Lost, footerAt, size)
	hexLine := regexp.MustCompile(`(?m)^  ([0-9a-f]{8})  `)
	inspectPlainAndHex(t, p, func(hex bool, out string) {
		if !strings.Contains(out, "\ncontent  DAMAGED: "+ad.Error()+"\n") || !strings.Contains(out, footer) ||
			!strings.Contains(out, fmt.Sprintf("; runs into the archive's content lost from %d\n", ad.Lost)) ||
			!strings.Contains(out, fmt.Sprintf("\n%-8d data ", segment.HeaderSize)) {
			t.Errorf("--hex %v: want the damage, the first record, slots and %q:\n%s", hex, footer, out)
		}
		for _, m := range hexLine.FindAllStringSubmatch(out, -1) {
			if at, _ := strconv.ParseInt(m[1], 16, 64); at >= ad.Lost {
				t.Errorf("--hex %v: a hex dump at %d, past the loss at %d", hex, at, ad.Lost)
				break
			}
		}
	})
}

// TestInspectDamagedArchiveNoFooterPlace: a damaged archive whose header
// is damaged too, and whose file name gives no sequence (or its content
// no segment's size), has no place for a footer: the footer line says
// so (the header's damage), as for such a segment file. inspect took the
// lost content for a cut inside a footer at offset 0 ("footer   CUT: the
// archive's content is lost from 262144, 262144 bytes into the footer at
// 0 ...: its other -262016 bytes are missing"; found by a review).
func TestInspectDamagedArchiveNoFooterPlace(t *testing.T) {
	dir := t.TempDir()
	img, off := salvageImage(t)
	img[20] ^= 1 // the header's checksum fails
	for _, c := range []struct {
		name string
		img  []byte
	}{
		{"copy.seg.zst", img},                      // no sequence in the name
		{segment.ArchiveName(1), img[:len(img)-4]}, // no segment's size (not a multiple of 8)
	} {
		p := filepath.Join(dir, c.name)
		ad := writeDamagedArchive(t, p, c.img, off)
		inspectPlainAndHex(t, p, func(hex bool, out string) {
			if !strings.Contains(out, "\ncontent  DAMAGED: "+ad.Error()+"\n") || !strings.Contains(out, "\nfooter   DAMAGED: ") ||
				strings.Contains(out, "into the footer") || strings.Contains(out, "footer   MISSING") {
				t.Errorf("%s, --hex %v: want the content's damage and the footer DAMAGED, not CUT or MISSING:\n%s", c.name, hex, out)
			}
		})
	}
}

// salvageImage returns a sealed 1 MiB segment whose records, of 216
// bytes (one crosses a zstd block boundary), fill its first half and
// end at off, where its END frame is.
func salvageImage(t *testing.T) (img []byte, off int64) {
	t.Helper()
	const size = 1 << 20
	img = segment.NewImage(1, size, vCreated)
	rng := rand.New(rand.NewPCG(1, 2))
	off, payload := int64(segment.HeaderSize), make([]byte, 190)
	for i := 0; off+segment.FrameHeaderSize+int64(len(payload)) < size/2; i++ {
		for k := range payload {
			payload[k] = byte('a' + rng.IntN(26)) // text, hardly compressible
		}
		off = segment.PutFrame(img, 1, off, segment.TypeData, vCreated+int64(i+1)*1e6, payload)
	}
	segment.PutEnd(img, 1, off, vCreated+9e9)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, vCreated+10e9); err != nil {
		t.Fatal(err)
	}
	return img, off
}

// writeDamagedArchive writes img compressed to p with a run of bytes
// flipped in a block of the records, not the first: one from which the
// content is lost before end. It returns the damage.
func writeDamagedArchive(t *testing.T, p string, img []byte, end int64) *segment.ArchiveDamage {
	t.Helper()
	good := zstdFrame(t, img)
	for at := len(good) / 2; at <= len(good)*3/4; at++ {
		bad := bytes.Clone(good)
		for i := at; i < at+32; i++ {
			bad[i] ^= 0x5a
		}
		if err := os.WriteFile(p, bad, 0o640); err != nil {
			t.Fatal(err)
		}
		var ad *segment.ArchiveDamage
		if _, err := segment.ReadArchive(p); errors.As(err, &ad) && ad.Lost > segment.HeaderSize && ad.Lost < end {
			return ad
		}
	}
	t.Fatal("no run of flipped bytes loses the content among the records")
	return nil
}

// TestInspectArchiveChecksumMismatch: an archive whose content decodes
// whole but not to the bytes compressed (its content checksum fails) is
// dumped whole, the damage named, where inspect refused it.
func TestInspectArchiveChecksumMismatch(t *testing.T) {
	dir := t.TempDir()
	s := vLog(t, dir, "sealed")[1]
	p := filepath.Join(dir, segment.ArchiveName(1))
	z := zstdFrame(t, s.img)
	z[len(z)-1] ^= 1 // the content checksum
	if err := os.WriteFile(p, z, 0o640); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execute(t, nil, "inspect", p)
	if code != exitOK || !strings.Contains(out, "\ncontent  DAMAGED: "+p+": cannot decompress: ") ||
		!strings.Contains(out, "\nfooter   sealed ") || strings.Contains(out, "lost") {
		t.Errorf("exit %d, want the damage and the whole segment, sealed:\n%s%s", code, out, errOut)
	}
}

// TestInspectArchiveSizes: an archive's first line gives the archive
// file's size and its content's, the segment's. It gave the content's
// size alone as the file's ("archive P (65536 bytes)" for a file of a
// few hundred).
func TestInspectArchiveSizes(t *testing.T) {
	dir := t.TempDir()
	s := vLog(t, dir, "sealed")[1]
	p := filepath.Join(dir, segment.ArchiveName(1))
	z := zstdFrame(t, s.img)
	if err := os.WriteFile(p, z, 0o640); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := execute(t, nil, "inspect", p)
	want := fmt.Sprintf("archive %s (%d bytes, %d decompressed)\n", p, len(z), len(s.img))
	if code != exitOK || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, want first line %q:\n%s%s", code, want, out, errOut)
	}
}
