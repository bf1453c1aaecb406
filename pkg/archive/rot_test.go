package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
)

// A sealed segment whose record rotted after it was sealed (its header and
// footer intact, so the plan takes it) is not archived: the archive would
// be a faithful copy of the rot, passing the comparison and zstd -t, and
// removing the original would leave no copy a backup could be checked
// against. The segment fails, named with the footer's offset, its original
// untouched; the segments around it are archived.
func TestRottedRecordIsNotArchived(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	b := bytes.Clone(fx.files[2])
	b[segment.HeaderSize+segment.FrameHeaderSize] ^= 0x01 // the first record's first payload byte
	writeFile(t, fx.seg(2), b)
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 2 || res.Failed != 1 {
		t.Fatalf("done %d, failed %d: %+v", res.Done, res.Failed, res.Segments)
	}
	for _, s := range res.Segments {
		if s.Seq != 2 {
			continue
		}
		want := fmt.Sprintf("%s: offset %d: its records do not match its footer's digest", fx.seg(2), segSize-segment.FooterSize)
		if s.Outcome != archive.Failed || s.Err == nil || !strings.HasPrefix(s.Err.Error(), want) {
			t.Errorf("segment 2: %+v; want failed with %q…", s, want)
		}
	}
	if !exists(fx.seg(2)) || exists(fx.zst(2)) || exists(fx.zst(2)+segment.TempExt) {
		t.Error("segment 2 archived, or its temp file left")
	}
	if !exists(fx.zst(1)) || !exists(fx.zst(3)) {
		t.Error("segments 1 and 3 not archived")
	}
	if got, err := os.ReadFile(fx.seg(2)); err != nil || !bytes.Equal(got, b) {
		t.Error("segment 2's original changed")
	}
}
