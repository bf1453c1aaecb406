package writer_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Recovery continues appending in a dead writer's newest segment only if
// it was prepared and never used: nothing written past its header
// (FORMAT.md section 8, step 3.3: the walk is one EvTail at 64). Its check
// was "no frame, no PAD to write, END goes at 64", which an END claim at
// 64 also passes (the END is written where the claim is): the writer went
// on appending over the claim, though the procedure (step 3.4) and
// verify's message for it ("writer.Open finishes and seals it") say the
// segment is sealed. A footer stored without its magic over a zero record
// area (END lost: verify's missing-end) passed too, and the writer's own
// seal wrote over it. Each such segment is now sealed or, if step 3.4
// refuses its claim, left as it is, and the records go to segment 2.
func TestRecoveryContinuesOnlyInANeverUsedSegment(t *testing.T) {
	const size = 64 << 10
	limit := segment.RecordLimit(size)
	claim := func(img []byte) { segment.StoreLength(img, segment.HeaderSize, -int32(limit-segment.HeaderSize)) }
	for _, c := range []struct {
		name   string
		change func(img []byte)
		want   string // "reused", "sealed" or "refused"
		// verify's exit code before Open: crash residue (3) only where
		// recovery seals; a missing-end where END is lost or recovery
		// refuses the segment (1).
		verdict int
	}{
		{"prepared", func([]byte) {}, "reused", verify.ExitClean},
		{"END claim at 64", claim, "sealed", verify.ExitUnfinished},
		{"END claim at 64, its header written", func(img []byte) {
			// PutEnd killed between its header and its commit.
			claim(img)
			segment.PutFrameHeader(img[segment.HeaderSize:], segment.TypeEnd, int32(limit-segment.HeaderSize), 1)
			segment.PutFrameCRC(img[segment.HeaderSize:], segment.FrameSeed(1), segment.HeaderSize)
		}, "sealed", verify.ExitUnfinished},
		{"damaged END claim at 64", func(img []byte) {
			claim(img)
			img[segment.HeaderSize+segment.FrameHeaderSize+8] = 'x'
		}, "refused", verify.ExitFindings},
		{"footer without its magic, no END", func(img []byte) {
			img[size-segment.FooterSize+8] = 1 // the footer's sequence number, stored before the magic
		}, "sealed", verify.ExitFindings},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			img := segment.NewImage(1, size, 1)
			c.change(img)
			path := filepath.Join(dir, segment.FileName(1))
			if err := os.WriteFile(path, img, 0o640); err != nil {
				t.Fatal(err)
			}
			before, err := verify.Dir(dir, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := before.ExitCode(false); got != c.verdict {
				t.Errorf("verify before Open: exit %d, want %d: %+v", got, c.verdict, before.Findings)
			}
			w, err := writer.Open(dir, writer.Options{SegmentSize: size, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			st := w.Recovered()
			var pos []segment.Position
			for _, p := range []string{"one", "two"} {
				at, err := w.Append([]byte(p))
				if err != nil {
					t.Fatal(err)
				}
				pos = append(pos, at)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			wantSeq := uint64(2)
			if c.want == "reused" {
				wantSeq = 1
			}
			if pos[0].Seq != wantSeq || pos[1].Seq != wantSeq {
				t.Errorf("records appended at %v; want them in segment %d (segment 1 %s)", pos, wantSeq, c.want)
			}
			ft, ferr := segment.ReadFooter(path)
			switch c.want {
			case "sealed":
				if st.RecoveredSegments != 1 || st.DamagedSegments != 0 {
					t.Errorf("recovery %+v; want segment 1 sealed", st)
				}
				if ferr != nil || ft.Flags&segment.FlagRecovered == 0 || ft.Records != 0 || ft.EndOffset != segment.HeaderSize {
					t.Errorf("segment 1: footer %+v, %v; want one by recovery, END at 64, no record", ft, ferr)
				}
			case "refused":
				if st.DamagedSegments != 1 || st.RecoveredSegments != 0 {
					t.Errorf("recovery %+v; want segment 1 left as it is", st)
				}
				if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, img) {
					t.Errorf("segment 1 changed (%v); want it as it was", err)
				}
			case "reused":
				if st != (writer.Stats{}) {
					t.Errorf("recovery %+v; want nothing recovered", st)
				}
			}
			if c.want != "refused" && ferr != nil && !errors.Is(ferr, segment.ErrNoFooter) {
				t.Errorf("segment 1: %v", ferr)
			}
			rep, err := verify.Dir(dir, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rep.Findings {
				if c.want != "refused" || f.Seq != 1 || f.Class != verify.MissingEnd && f.Class != verify.Unfinished || f.Residue {
					t.Errorf("verify: %+v", f)
				} else if f.Class == verify.MissingEnd && !strings.Contains(f.Reason, "and a later segment is sealed") {
					t.Errorf("verify's reason for the refused segment: %q", f.Reason)
				}
			}
			r, err := reader.Open(dir, reader.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []string
			for r.Next() {
				rec := r.Record()
				got = append(got, string(rec.Payload))
				if len(got) <= len(pos) && rec.Position != pos[len(got)-1] {
					t.Errorf("read %q at %v; appended at %v", rec.Payload, rec.Position, pos[len(got)-1])
				}
			}
			if r.Err() != nil || strings.Join(got, ",") != "one,two" {
				t.Errorf("read %q (%v); want the two records", got, r.Err())
			}
		})
	}
}
