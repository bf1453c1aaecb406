package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailRefusedSegmentHasNoLeftovers: a dead writer's segment 2 whose
// first record is a reservation never committed, followed by a torn
// frame and an intact one, then END, or by an END claim with a byte
// behind its header and no END, before
// an empty segment 3 made ahead. writer.Open leaves segment 2 unsealed
// (FORMAT.md section 8, steps 3.2, 3.4) and verify fails it; tail warned
// that the reservation and the missing END were a dead writer's, a repair
// that never comes. They are damage, counted in the closing line, the
// same before the recovery and after it. Exit 1 either way.
func TestTailRefusedSegmentHasNoLeftovers(t *testing.T) {
	for _, claim := range []bool{false, true} {
		t.Run(fmt.Sprintf("END claim %v", claim), func(t *testing.T) {
			dir := t.TempDir()
			segs := vLog(t, dir, "sealed", "open", "prepared")
			s := segs[2]
			segment.StoreLength(s.img, s.offs[0], -segment.LoadLength(s.img, s.offs[0]))
			why := fmt.Sprintf("a committed frame in it is torn (at offset %d)", s.offs[1])
			if claim {
				limit := segment.RecordLimit(segment.MinSegmentSize)
				segment.StoreLength(s.img, s.end, -int32(limit-s.end))
				s.img[s.end+segment.FrameHeaderSize+8] = 'x'
				why = fmt.Sprintf("its END claim at %d has a non-zero byte at %d behind its header", s.end, s.end+segment.FrameHeaderSize+8)
			} else {
				s.img[s.offs[1]+segment.FrameHeaderSize+2] ^= 0xff
				// An intact frame after it, then END: a torn frame with
				// nothing intact after it is a torn tail, which recovery
				// finishes (step 3.5).
				end := segment.PutFrame(s.img, s.seq, s.end, segment.TypeData, vCreated+int64(s.seq)*1e9+3e8, []byte("after"))
				segment.PutEnd(s.img, s.seq, end, vCreated+int64(s.seq)*1e9+4e8)
			}
			vWrite(t, dir, s)
			log := filepath.Join(dir, "log")
			p := filepath.Join(log, segment.FileName(2))
			reservation := fmt.Sprintf("auditseg tail: %s: offset %d: frame reserved and never committed (%d bytes), and writer.Open leaves the segment unsealed: %s; skipped %[3]d bytes\n",
				p, s.offs[0], s.offs[1]-s.offs[0], why)
			// The reservation, then the torn frame (up to the intact one)
			// or the claim.
			closing := fmt.Sprintf("\n%s: 2 damaged places skipped; run", log)
			check := func(step string) {
				t.Helper()
				out, stderr, code := execute(t, nil, "tail", "-n", "+1", log)
				if code != exitFailure || strings.Contains(stderr, "warning") ||
					!strings.HasPrefix(stderr, reservation) || !strings.Contains(stderr, closing) ||
					strings.Count(strings.TrimSpace(stderr), "\n") != 2 {
					t.Errorf("%s: exit %d, stderr:\n%s\nwant exit %d, no warning, first line %q and %q", step, code, stderr, exitFailure, reservation, closing)
				}
				if !strings.Contains(out, `{"seg":1,"n":2`) {
					t.Errorf("%s: output %q", step, out)
				}
			}
			check("no writer")
			w, err := writer.Open(log, writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st := w.Recovered(); st.DamagedSegments != 1 || st.RecoveredSegments != 0 {
				t.Fatalf("recovery %+v; want segment 2 left as it is", st)
			}
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, s.img) {
				t.Fatalf("segment 2 changed by recovery (%v); want it left unsealed", err)
			}
			check("the writer that recovered it alive")
		})
	}
}
