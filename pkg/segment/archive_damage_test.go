package segment_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

// realArchive writes a sealed segment of size bytes, full of records
// varied enough that its archive has many compressed blocks, and archives
// it with pkg/archive as compress-finished does. It returns the original,
// the archive's path and its bytes.
func realArchive(t testing.TB, size int64) (orig []byte, path string, archived []byte) {
	t.Helper()
	dir := t.TempDir()
	img := segment.NewImage(1, size, 1_700_000_000_000_000_000)
	off, x := int64(segment.HeaderSize), uint64(1)
	for i := 0; ; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		p := fmt.Appendf(nil, "user=u%d action=login session=%016x n=%d", i%13, x, i)
		if off+segment.Align(int64(segment.FrameHeaderSize+len(p)))+segment.FrameHeaderSize > segment.RecordLimit(size) {
			break
		}
		off = segment.PutFrame(img, 1, off, segment.TypeData, 1_700_000_000_000_000_000+int64(i), p)
	}
	segment.PutEnd(img, 1, off, 1_700_000_000_500_000_000)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, 1_700_000_001_000_000_000); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, segment.FileName(1)), img)
	// The newest segment is a writer's, never archived.
	writeFile(t, filepath.Join(dir, segment.FileName(2)), segment.NewImage(2, segment.MinSegmentSize, 1_700_000_002_000_000_000))
	res, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1})
	if err != nil || res.Err() != nil {
		t.Fatalf("archive.Run: %v %v", err, res.Err())
	}
	p := filepath.Join(dir, segment.ArchiveName(1))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return img, p, b
}

// block is one zstd block of a frame as the test sees it: an oracle
// independent of the code under test, which parses no block header.
type block struct{ at, end int64 }

// frameBlocks lists the blocks of the zstd frame at the start of b (RFC
// 8878 section 3.1.1.2: a 3-byte little-endian header, bit 0 last, bits
// 1-2 the type, then the size; an RLE block holds one byte).
func frameBlocks(t *testing.T, b []byte) []block {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(b); err != nil {
		t.Fatal(err)
	}
	var blocks []block
	for at := int64(h.HeaderSize); ; {
		v := int64(b[at]) | int64(b[at+1])<<8 | int64(b[at+2])<<16
		n := v >> 3
		if (v>>1)&3 == 1 {
			n = 1
		}
		blocks = append(blocks, block{at, at + 3 + n})
		if v&1 != 0 {
			return blocks
		}
		at += 3 + n
	}
}

// decodedBefore is how many bytes the good archive's blocks before the
// one at at decode to: the library decoding the archive cut there.
func decodedBefore(t *testing.T, good []byte, at int64) int64 {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(good[:at]), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	n, err := io.Copy(io.Discard, dec)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("archive cut at %d: %v", at, err)
	}
	return n
}

// TestArchiveDamagePlaced: a byte flipped in a compressed block of an
// archive gives an error naming the file, the archive offset of that
// block and the segment offset from which content is lost: how much its
// earlier blocks decode to. Before, the error carried the decoder's
// words alone ("cannot decompress: ..."), and verify reported the
// segment torn from 0.
func TestArchiveDamagePlaced(t *testing.T) {
	orig, p, good := realArchive(t, 1<<20)
	blocks := frameBlocks(t, good)
	if len(blocks) < 4 {
		t.Fatalf("%d blocks; the test needs several", len(blocks))
	}
	c := newComparer(t)
	placed := 0
	for i, blk := range blocks {
		// The block header, the first content byte and one in the middle.
		for _, at := range []int64{blk.at, blk.at + 3, (blk.at + 3 + blk.end) / 2} {
			if at >= blk.end {
				continue
			}
			bad := bytes.Clone(good)
			bad[at] ^= 0x5a
			writeFile(t, p, bad)
			_, rerr := segment.ReadArchive(p)
			cerr := c.Compare(p, orig)
			var ad *segment.ArchiveDamage
			if !errors.As(rerr, &ad) {
				if rerr != nil {
					t.Errorf("block %d, byte %d: %v, not an *ArchiveDamage", i, at, rerr)
				}
				continue // a bit the format ignores
			}
			if !errors.Is(rerr, segment.ErrCorrupt) || ad.Path != p || ad.Size != int64(len(orig)) {
				t.Fatalf("block %d, byte %d: %v (%+v)", i, at, rerr, ad)
			}
			salvageAgrees(t, p, ad)
			if ad.Block < 0 {
				// The block decoded to other bytes: only the content
				// checksum saw it, and it does not say where.
				if !errors.Is(ad.Err, zstd.ErrCRCMismatch) || ad.Lost != 0 {
					t.Errorf("block %d, byte %d: %+v", i, at, ad)
				}
				continue
			}
			if ad.Block != blk.at {
				t.Errorf("block %d (%d..%d), byte %d flipped: reported at archive offset %d", i, blk.at, blk.end, at, ad.Block)
			}
			if want := decodedBefore(t, good, blk.at); ad.Lost != want {
				t.Errorf("block %d, byte %d flipped: lost from segment offset %d, its earlier blocks decode to %d", i, at, ad.Lost, want)
			}
			if i > 0 && ad.Lost == 0 {
				t.Errorf("block %d, byte %d flipped: the segment is lost from 0", i, at)
			}
			// The comparer compress-finished uses places it alike (data
			// past the segment's end it reports as a difference).
			var cd *segment.ArchiveDamage
			if ad.Lost < ad.Size && (!errors.As(cerr, &cd) || cd.Block != ad.Block || cd.Lost != ad.Lost) {
				t.Errorf("block %d, byte %d: ReadArchive %v, Compare %v", i, at, rerr, cerr)
			}
			placed++
		}
	}
	t.Logf("%d flips in %d blocks placed", placed, len(blocks))
	if placed < len(blocks) {
		t.Errorf("only %d flips in %d blocks placed", placed, len(blocks))
	}
}

// TestArchiveDamageKinds: the damage outside a block is told apart: a
// checksum mismatch has no block, a damaged frame header no content, and
// bytes after the frame lose nothing of the segment.
func TestArchiveDamageKinds(t *testing.T) {
	orig, p, good := realArchive(t, 256<<10)
	blocks := frameBlocks(t, good)
	last := blocks[len(blocks)-1]
	if last.end-last.at != 3 {
		t.Fatalf("the frame ends with a block of %d bytes; the test expects the empty one the encoder ends a segment with", last.end-last.at)
	}
	frameEnd := last.end + 4 // the content checksum
	for _, tc := range []struct {
		name        string
		at          int64
		block, lost int64
	}{
		{"content checksum", frameEnd - 2, -1, 0},
		// After the last block with output, the decoder reads the empty
		// last block and the checksum unseen: the failure is placed
		// after them.
		{"summary frame magic", frameEnd, last.at, int64(len(orig))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(good)
			bad[tc.at] ^= 0xff
			writeFile(t, p, bad)
			_, err := segment.ReadArchive(p)
			var ad *segment.ArchiveDamage
			if !errors.As(err, &ad) || ad.Block != tc.block || ad.Lost != tc.lost {
				t.Fatalf("%v (%+v), want block %d, lost from %d", err, ad, tc.block, tc.lost)
			}
			// Both salvage the whole segment: the damaged bytes are the
			// checksum's or after the frame, so what decodes is the
			// original.
			im, serr := segment.OpenSalvaged(p)
			if serr != nil {
				t.Fatalf("OpenSalvaged: %v", serr)
			}
			defer im.Close()
			if !bytes.Equal(im.Data, orig) || im.HeaderErr != nil || !im.Archived || im.Lost() != 0 {
				t.Fatalf("salvaged image: %d bytes, equal %v, header %v, lost from %d", len(im.Data), bytes.Equal(im.Data, orig), im.HeaderErr, im.Lost())
			}
		})
	}

	// A frame header that passes the reader's own checks, the decoder
	// refuses: its window (2 GiB, in the window descriptor those checks
	// do not read) is larger than any segment.
	hdr := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc0, (31 - 10) << 3}
	hdr = append(hdr, 0, 0, 1, 0, 0, 0, 0, 0) // content size 64 KiB
	writeFile(t, p, append(hdr, 0x01, 0x00, 0x00))
	_, err := segment.ReadArchive(p)
	var ad *segment.ArchiveDamage
	if !errors.As(err, &ad) || ad.Block != 0 || ad.Lost != 0 {
		t.Fatalf("huge window: %v (%+v), want the frame header", err, ad)
	}
}

// salvageAgrees checks what OpenSalvaged makes of the archive at p, which
// OpenImage refused with ad: nothing from where the content is lost on is
// read, and no record the walk yields reaches it.
func salvageAgrees(t *testing.T, p string, ad *segment.ArchiveDamage) {
	t.Helper()
	im, err := segment.OpenSalvaged(p)
	if err != nil {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("OpenSalvaged error does not name the file: %v", err)
		}
		if ad.Block < 0 || ad.Lost > segment.HeaderSize {
			t.Fatalf("OpenSalvaged refused damage %+v: %v", ad, err)
		}
		return
	}
	defer im.Close()
	lost := im.Lost()
	switch {
	case ad.Block < 0 || ad.Lost >= ad.Size:
		if lost != 0 {
			t.Fatalf("damage %+v: lost from %d", ad, lost)
		}
	case lost != min(ad.Lost, ad.Size-segment.FooterSize) || im.Valid() != lost:
		t.Fatalf("damage %+v: lost from %d, valid %d", ad, lost, im.Valid())
	case segment.ZeroFrom(im.Data, lost, int64(len(im.Data))) != int64(len(im.Data)):
		t.Fatalf("damage %+v: non-zero bytes after %d", ad, lost)
	}
	im.Walk(segment.HeaderSize, segment.Sealed, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData && ev.Offset+int64(ev.Frame.Length) > im.Valid() {
			t.Fatalf("record at %d (%d bytes) reaches past %d", ev.Offset, ev.Frame.Length, im.Valid())
		}
		return true
	})
}

// recordsBefore returns the offsets and payloads of the records of img
// whose frames end at or before lost: what a reader can take from an
// archive whose content is lost from there (each frame's CRC covers its
// header and payload, not its alignment padding).
func recordsBefore(t *testing.T, img []byte, lost int64) map[int64]string {
	t.Helper()
	want := map[int64]string{}
	segment.Walk(img, 1, segment.HeaderSize, segment.Sealed, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData && ev.Offset+int64(ev.Frame.Length) <= lost {
			want[ev.Offset] = string(ev.Frame.Payload)
		}
		return true
	})
	return want
}

// TestArchiveBlockDamageSalvaged: a block header damaged in the middle of
// an archive stops the decoder there; OpenSalvaged gives the segment as
// far as its earlier blocks decode, zero after, and the walk of it yields
// exactly the records whose frames end before the loss. Before, it
// refused anything but a checksum mismatch, and readers lost the whole
// segment.
func TestArchiveBlockDamageSalvaged(t *testing.T) {
	orig, p, good := realArchive(t, 1<<20)
	blocks := frameBlocks(t, good)
	blk := blocks[len(blocks)/2]
	bad := bytes.Clone(good)
	bad[blk.at+2] ^= 0xff // the block size's high bits: past the frame's end
	writeFile(t, p, bad)
	_, err := segment.OpenImage(p)
	var ad *segment.ArchiveDamage
	if !errors.As(err, &ad) || ad.Block != blk.at || ad.Lost <= segment.HeaderSize || ad.Lost >= ad.Size {
		t.Fatalf("OpenImage: %v (%+v), want a block error at %d", err, ad, blk.at)
	}
	salvageAgrees(t, p, ad)
	im, err := segment.OpenSalvaged(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if im.Lost() != ad.Lost || int64(len(im.Data)) != ad.Size || !bytes.Equal(im.Data[:ad.Lost], orig[:ad.Lost]) {
		t.Fatalf("lost from %d (want %d), %d bytes, prefix equal %v", im.Lost(), ad.Lost, len(im.Data), bytes.Equal(im.Data[:ad.Lost], orig[:ad.Lost]))
	}
	if err := im.Check(); err != nil || im.HeaderErr != nil {
		t.Fatalf("Check %v, header %v", err, im.HeaderErr)
	}
	// The summary's header still matches; its footer has nothing to match.
	if err := im.CheckSummary(); err != nil {
		t.Fatalf("CheckSummary: %v", err)
	}
	if _, err := im.Footer(); !errors.Is(err, segment.ErrNoFooter) {
		t.Fatalf("Footer: %v, want ErrNoFooter (the footer is lost)", err)
	}
	want := recordsBefore(t, orig, ad.Lost)
	got := map[int64]string{}
	var last segment.Event
	im.Walk(segment.HeaderSize, segment.Sealed, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
			got[ev.Offset] = string(ev.Frame.Payload)
		}
		last = ev
		return true
	})
	if len(want) < 10 || !maps.Equal(got, want) {
		t.Fatalf("salvaged %d records, want the %d ending before %d", len(got), len(want), ad.Lost)
	}
	if last.Kind == segment.EvFrame || last.Offset > ad.Lost {
		t.Fatalf("walk ended with %v at %d, past the loss at %d", last.Kind, last.Offset, ad.Lost)
	}
}
