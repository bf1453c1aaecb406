package segment

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fixtures shared by the tests and the fuzz corpus generator. Everything is
// built with the package's own builders (NewImage, PutFrame, PutPad, PutEnd,
// Seal), so a test image holds exactly the bytes a writer would store.

const (
	testSeq  uint64 = 7
	testSize int64  = MinSegmentSize
)

// testPayloads are the records of the standard fixture: an empty record, a
// short one, one that needs no alignment padding and one that is not a
// multiple of 8.
var testPayloads = [][]byte{
	[]byte("alpha"),
	{},
	bytes.Repeat([]byte{0xA5}, 40), // 24+40 = 64: no padding
	[]byte(strings.Repeat("delta-", 20)),
	[]byte("epsilon"),
}

// testTimes are the frames' timestamps, deliberately not in order.
var testTimes = []int64{1_700_000_000_000_000_300, 1_700_000_000_000_000_100, 1_700_000_000_000_000_500, 1_700_000_000_000_000_200, 1_700_000_000_000_000_400}

// fixture is a segment image with the offsets of its frames.
type fixture struct {
	img  []byte
	offs []int64 // offset of each DATA frame
	end  int64   // offset of the END frame, or of the first free byte if none
}

// buildFixture writes testPayloads as DATA frames and, if withEnd, an END
// frame right after them.
func buildFixture(withEnd bool) fixture {
	img := NewImage(testSeq, testSize, 1_600_000_000_000_000_000)
	fx := fixture{img: img}
	off := int64(HeaderSize)
	for i, p := range testPayloads {
		fx.offs = append(fx.offs, off)
		off = PutFrame(img, testSeq, off, TypeData, testTimes[i], p)
	}
	fx.end = off
	if withEnd {
		PutEnd(img, testSeq, off, 1_700_000_000_000_001_000)
	}
	return fx
}

// ext returns the extent of DATA frame i of the fixture.
func (fx fixture) ext(i int) int64 { return FrameSize(len(testPayloads[i])) }

// evs renders walk events compactly ("frame@64+32 end@...") so table tests
// compare whole walks and a failure shows the whole walk.
func evs(img []byte, seq uint64, from int64, mode WalkMode) (string, int64) {
	var parts []string
	stop := Walk(img, seq, from, mode, func(ev Event) bool {
		parts = append(parts, fmt.Sprintf("%s@%d+%d", ev.Kind, ev.Offset, ev.Len))
		return true
	})
	return strings.Join(parts, " "), stop
}

// wantCorrupt fails unless err is a *CorruptError at offset off whose reason
// contains reason.
func wantCorrupt(t *testing.T, err error, off int64, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want corrupt at %d (%q)", off, reason)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CorruptError", err)
	}
	if ce.Offset != off {
		t.Errorf("error %q at offset %d, want %d", err, ce.Offset, off)
	}
	if !strings.Contains(ce.Reason, reason) {
		t.Errorf("error %q, want reason containing %q", err, reason)
	}
}

// writeSegment writes img to dir under the name of segment seq and returns
// the path.
func writeSegment(t *testing.T, dir string, seq uint64, img []byte) string {
	t.Helper()
	p := filepath.Join(dir, FileName(seq))
	if err := os.WriteFile(p, img, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

// sealed returns a sealed copy of the standard fixture.
func sealedFixture(t *testing.T, prev [DigestSize]byte) ([]byte, Footer) {
	t.Helper()
	fx := buildFixture(true)
	f, err := Seal(fx.img, prev, 0, 1_700_000_000_000_002_000)
	if err != nil {
		t.Fatal(err)
	}
	return fx.img, f
}
