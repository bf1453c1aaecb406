package writer_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestRecoveryOfATornTail: a power cut under --sync always (interval,
// none) can leave the active segment's last frame committed but torn,
// its Append not returned: its pages reached the disk apart (found by
// TestPowerLossExt4). Nothing intact follows it, so it is crash residue
// (FORMAT.md section 8, step 3.5): recovery writes a PAD header over it
// covering every non-zero byte, the torn bytes staying under it, then
// END, and seals the segment with every record before it. It used to
// leave the segment unsealed for good (verify exit 1 forever).
func TestRecoveryOfATornTail(t *testing.T) {
	const size = 64 << 10
	for _, tc := range []struct {
		name string
		tear func(img []byte, off int64)
		pad  int64 // the PAD's length
	}{
		// The header and commit word on disk; the payload's second half
		// in a page that was not.
		{"payload zeroed", func(img []byte, off int64) { clear(img[off+24+250 : off+24+500]) }, segment.Align(24 + 250)},
		// The payload on disk; the page with the commit word not.
		{"header zeroed", func(img []byte, off int64) { clear(img[off : off+24]) }, segment.FrameSize(500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img, offs, _ := fullOfRecords(size)
			last := offs[len(offs)-1]
			tc.tear(img, last)
			path := filepath.Join(dir, segment.FileName(1))
			if err := os.WriteFile(path, img, 0o640); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			w, err := writer.Open(dir, writer.Options{SegmentSize: size, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatal(err)
			}
			st := w.Recovered()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if st.RecoveredSegments != 1 || st.TornTails != 1 || st.DamagedSegments != 0 || st.RecoveredFrames != 0 {
				t.Fatalf("recovery stats %+v, want the segment recovered with one torn tail", st)
			}
			if s := logged.String(); !strings.Contains(s, "torn tail: a committed frame an interrupted flush tore; nothing intact follows it") ||
				!strings.Contains(s, fmt.Sprintf("offset=%d length=%d", last, tc.pad)) {
				t.Errorf("recovery's log does not report the torn tail at %d (%d bytes):\n%s", last, tc.pad, s)
			}
			got := intactPayloads(t, dir)
			if len(got) != len(offs)-1 {
				t.Errorf("%d records after recovery, want the %d before the torn one", len(got), len(offs)-1)
			}
			for i, o := range offs[:len(offs)-1] {
				if p := got[segment.Position{Seq: 1, Offset: o}]; len(p) != 500 || p[0] != byte(i) {
					t.Fatalf("record %d at %d lost by recovery", i, o)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if f := segment.DecodeFrame(after, 1, last); f.State != segment.Committed || f.Type != segment.TypePad || int64(f.Length) != tc.pad {
				t.Fatalf("at the torn frame: %+v; want a PAD of %d bytes", f, tc.pad)
			}
			if !bytes.Equal(after[last+24:last+tc.pad], img[last+24:last+tc.pad]) {
				t.Error("the torn bytes under the PAD changed")
			}
			im, err := segment.OpenImage(path)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if f, err := im.Footer(); err != nil || f.EndOffset != last+tc.pad || f.Flags&segment.FlagRecovered == 0 {
				t.Fatalf("footer %+v, %v; want recovered, END at %d", f, err, last+tc.pad)
			}
		})
	}
}

// The same tear with an intact committed frame after it is damage:
// recovery leaves the segment as it is, unsealed, as before.
func TestRecoveryOfATornFrameBeforeAnIntactOne(t *testing.T) {
	const size = 64 << 10
	dir := t.TempDir()
	img, offs, _ := fullOfRecords(size)
	clear(img[offs[len(offs)-2]+24 : offs[len(offs)-2]+24+500])
	path := filepath.Join(dir, segment.FileName(1))
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	if st := recoverOnce(t, dir, size); st.DamagedSegments != 1 || st.RecoveredSegments != 0 || st.TornTails != 0 {
		t.Fatalf("recovery stats %+v, want the segment left as damaged", st)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, img) {
		t.Fatal("recovery changed a segment it leaves as it is")
	}
}
