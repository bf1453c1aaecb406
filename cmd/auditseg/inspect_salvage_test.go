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
	const size = 1 << 20
	img := segment.NewImage(1, size, vCreated)
	rng := rand.New(rand.NewPCG(1, 2))
	off, payload := int64(segment.HeaderSize), make([]byte, 190) // frames of 216 bytes: one crosses the block boundary
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
	p := filepath.Join(dir, segment.ArchiveName(1))
	good := zstdFrame(t, img)
	// A run of bytes flipped in a block of the records, not the first.
	var ad *segment.ArchiveDamage
	for at := len(good) / 2; ; at++ {
		if at > len(good)*3/4 {
			t.Fatal("no run of flipped bytes loses the content among the records")
		}
		bad := bytes.Clone(good)
		for i := at; i < at+32; i++ {
			bad[i] ^= 0x5a
		}
		if err := os.WriteFile(p, bad, 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := segment.ReadArchive(p)
		if errors.As(err, &ad) && ad.Lost > segment.HeaderSize && ad.Lost < off {
			break
		}
	}
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
