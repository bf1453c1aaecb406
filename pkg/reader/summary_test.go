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
	sinceLastTwo(t, func(uint64) (bool, bool) { return true, false })
}

// TestSinceReadsPastDamagedSummary: an archive whose summary is damaged
// (its content intact) before where Since starts is decompressed once to
// read its footer, and the archives after it are then passed by their
// summaries as before, not decompressed one by one: locateSince took the
// summary's damage for a segment without a footer and started reading
// there, so every archive after it was opened (up to 64 MiB decompressed
// each) only to be skipped by the footer its content holds. The archives
// after it have their compressed frames destroyed (summaries intact), as
// in TestSinceReadsArchiveSummaries: opening one reports damage.
func TestSinceReadsPastDamagedSummary(t *testing.T) {
	sinceLastTwo(t, func(seq uint64) (bool, bool) { return seq > 1, seq == 1 })
}

// sinceLastTwo archives every segment of a log but the last two, damaged
// as damage says for each (its compressed frame destroyed past its
// header, its summary's CRC failing), reads from the first record of
// those two on with Since, and expects exactly those records and no
// damage.
func sinceLastTwo(t *testing.T, damage func(seq uint64) (destroy, badSummary bool)) {
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
		destroy, badSummary := damage(seq)
		for i := 16; destroy && i < len(z); i++ {
			z[i] = 0x5A // the frame destroyed past its header
		}
		z = segment.AppendSummary(z, orig)
		if badSummary {
			z[len(z)-1] ^= 1 // the summary's CRC fails
		}
		if err := os.WriteFile(a, z, 0o640); err != nil {
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
