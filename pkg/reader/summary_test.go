package reader_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestSinceReadsArchiveSummaries: to find where Since starts, the reader
// reads archives' summaries, not the archives. With the compressed frames
// of the archives before that point destroyed (their summaries intact), a
// read from a time in a later segment reports no damage and returns
// exactly the records from that time on.
func TestSinceReadsArchiveSummaries(t *testing.T) {
	dir := t.TempDir()
	all := writeLogWith(t, dir, 3000, true, mixedPayload)
	last := all[len(all)-1].pos.Seq
	if last < 5 {
		t.Fatalf("only %d segments", last)
	}
	for seq := uint64(1); seq < last-1; seq++ {
		p := filepath.Join(dir, segment.FileName(seq))
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		archiveSegment(t, dir, seq, orig)
		a := filepath.Join(dir, segment.ArchiveName(seq))
		z, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		for i := 16; i < len(z); i++ {
			z[i] = 0x5A // the frame destroyed past its header
		}
		if err := os.WriteFile(a, segment.AppendSummary(z, orig), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	from := 0
	for from < len(all) && all[from].pos.Seq < last-1 {
		from++
	}
	got, dmg := readAll(t, dir, reader.Options{Since: time.Unix(0, all[from].ts)})
	if len(dmg) != 0 {
		t.Fatalf("damage reported: %v", dmg)
	}
	sameRecs(t, got, all[from:])
}
