package segment

import (
	"bytes"
	"testing"
)

// BenchmarkScanData decodes a 4 MiB segment of 100-byte records (the
// bulk replay's inner loop, without output), through ScanData on the image
// and through ScanDataIn on a copy of a 2 MiB window of it.
func BenchmarkScanData(b *testing.B) {
	const size = 4 << 20
	img := NewImage(testSeq, size, 1)
	payload := bytes.Repeat([]byte("0123456789"), 10)
	off := int64(HeaderSize)
	for off+FrameSize(len(payload)) <= DataLimit(size) {
		off = PutFrame(img, testSeq, off, TypeData, off, payload)
	}
	var n, sum int
	count := func(_, _ int64, _ uint32, p []byte) { n++; sum += len(p) }
	b.Run("image", func(b *testing.B) {
		b.SetBytes(off - HeaderSize)
		for b.Loop() {
			ScanData(img, testSeq, HeaderSize, off, count)
		}
	})
	win := bytes.Clone(img[HeaderSize : HeaderSize+2<<20])
	b.Run("window", func(b *testing.B) {
		b.SetBytes(int64(len(win)))
		for b.Loop() {
			ScanDataIn(win, HeaderSize, size, testSeq, HeaderSize, HeaderSize+int64(len(win)), count)
		}
	})
	if n == 0 || sum != n*len(payload) {
		b.Fatalf("%d records, %d bytes", n, sum)
	}
}
