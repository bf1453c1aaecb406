package speccheck

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/klauspost/compress/zstd"
)

// summaryOf is section 10's summary frame for a segment image.
func summaryOf(img []byte) []byte {
	s := make([]byte, summaryLen)
	le.PutUint32(s, summaryMagic)
	le.PutUint32(s[4:], summaryBody)
	copy(s[8:], "ASEGSUMM")
	copy(s[16:80], img[:headerSize])
	copy(s[80:208], img[len(img)-footerSize:])
	le.PutUint32(s[208:], crc32.Checksum(s[8:208], castagnoli))
	return s
}

func skippable(magic uint32, body []byte) []byte {
	b := le.AppendUint32(nil, magic)
	b = le.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func zstdFrame(t *testing.T, p []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(p, nil)
}

// zstdStream is p compressed as a stream, its size not stated.
func zstdStream(t *testing.T, p []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	// Flushed before the end, the encoder cannot know the size.
	if _, err := enc.Write(p[:1024]); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(p[1024:]); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCleanRoomArchivesAlike writes archives of a sealed segment in the
// ways section 10 accepts and refuses, and holds verify to the clean-room
// verifier on each.
func TestCleanRoomArchivesAlike(t *testing.T) {
	clean, _ := sharedLog(t)
	unarchive(t, clean)
	names := logFiles(t, clean)
	seg := names[1]
	img, err := os.ReadFile(filepath.Join(clean, seg))
	if err != nil {
		t.Fatal(err)
	}
	sum := summaryOf(img)
	frame := zstdFrame(t, img)
	if _, cs, err := zstdFrameEnd(zstdStream(t, img)); err == nil {
		t.Fatalf("the stream states its content size %d", cs)
	}
	noMagic := bytes.Clone(img)
	clear(noMagic[len(img)-footerSize : len(img)-footerSize+8])
	zeroFooter := bytes.Clone(img)
	clear(zeroFooter[len(img)-footerSize:])
	cases := []struct {
		name    string
		archive []byte
	}{
		{"content's footer without its magic", cat(zstdFrame(t, noMagic), sum)},
		{"content's footer all zeros", cat(zstdFrame(t, zeroFooter), sum)},
		{"content's footer all zeros, no summary", zstdFrame(t, zeroFooter)},
		{"as compress-finished writes it", cat(frame, sum)},
		{"no summary", frame},
		{"no content checksum", cat(zstdFrame(t, img, zstd.WithEncoderCRC(false)), sum)},
		{"no content size", cat(zstdStream(t, img), sum)},
		{"two data frames", cat(zstdFrame(t, img[:4096]), zstdFrame(t, img[4096:]), sum)},
		{"another skippable frame before the summary", cat(frame, skippable(0x184D2A50, []byte("note")), sum)},
		{"another skippable frame after the summary", cat(frame, sum, skippable(0x184D2A50, []byte("note")))},
		{"bytes after the summary", cat(frame, sum, []byte{1, 2, 3, 4})},
		{"the summary's frame 4 bytes longer", cat(frame, skippable(summaryMagic, append(bytes.Clone(sum[8:]), 0, 0, 0, 0)))},
		{"a summary of another segment", cat(frame, summaryOf(mustRead(t, filepath.Join(clean, names[2]))))},
		{"a summary with another footer, CRCs good", cat(frame, forgedSummary(img))},
	}
	for _, c := range cases {
		dir := t.TempDir()
		testfs.CopyFiles(t, clean, dir)
		if err := os.Remove(filepath.Join(dir, seg)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, seg+".zst"), c.archive, 0o640); err != nil {
			t.Fatal(err)
		}
		_, ours := sameVerdict(t, c.name, dir)
		t.Logf("%s: flagged %v", c.name, ours)
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forgedSummary is img's summary with one more record in its footer's
// copy, the footer's CRC and the summary's made good.
func forgedSummary(img []byte) []byte {
	forged := bytes.Clone(img)
	ft := forged[len(forged)-footerSize:]
	le.PutUint64(ft[16:], le.Uint64(ft[16:])+1)
	le.PutUint32(ft[124:], crc32.Checksum(ft[:124], castagnoli))
	return summaryOf(forged)
}
