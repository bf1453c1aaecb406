package reader_test

import (
	"os"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/klauspost/compress/zstd"
)

// An archive whose segment frame decodes whole, followed by a second,
// empty zstd data frame (FORMAT.md section 10: damage), still holds every
// record of its segment, each vouched for by its CRC, as an archive with
// garbage after its frame does (ArchiveDamage with Lost == Size: salvaged
// whole). The reader must report the damage and read the records, not
// drop the whole segment.
func TestArchiveSecondEmptyFrameKeepsRecords(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	empty := enc.EncodeAll(nil, nil)
	enc.Close()
	for _, tc := range []struct {
		name  string
		extra []byte
	}{
		{"garbage after the frame", []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}},
		{"second empty data frame", empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, recs, p, z := archivedLog(t)
			b := append(append([]byte{}, z...), tc.extra...) // the fixture writes no summary
			if err := os.WriteFile(p, b, 0o640); err != nil {
				t.Fatal(err)
			}
			got, dmg := readAll(t, dir, reader.Options{})
			if len(dmg) != 1 || dmg[0].Seq != 1 {
				t.Errorf("damage %+v, want segment 1 reported once", dmg)
			}
			if len(got) != len(recs) {
				t.Fatalf("read %d of %d records (damage: %v): the segment's frame decodes whole", len(got), len(recs), dmg)
			}
		})
	}
}
