package reader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestPrefetchedDamagedHeaderTruncated: a segment whose header is damaged
// is read by its file name's sequence (ReadByName), and its footer is
// the first read of the mapping since the open. Prefetched, then cut to
// 4096 bytes before the reader came to it, that read faults and the
// segment is opened again, as it is now: too short to be read by name.
// The header was reported for the first image, as readable, before the
// footer's read, and again for the fresh one: two reports of one header,
// the first saying its records would be read. The fresh image's report
// stands for it, once, as for any segment opened again so.
func TestPrefetchedDamagedHeaderTruncated(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	n, dmg, p := readPrefetchTruncated(t, Options{}, func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, segment.FileName(2)), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt([]byte("NOTASEGM"), 0); err != nil {
			t.Fatal(err)
		}
	})
	if n != 200 || len(dmg) != 1 {
		t.Fatalf("%d records, damage %v; want segments 1 and 3, one report", n, dmg)
	}
	if d := dmg[0]; d.Kind != DamageSegment || d.Path != p || !strings.Contains(d.Error(), "bad magic") || strings.Contains(d.Error(), "read one by one") {
		t.Fatalf("damage %q (%+v); want the header of %s, unreadable", d.Error(), d, p)
	}
}
