package reader

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
)

// noteOldest notes the oldest segment listed when a look finds the
// reader's segment still the file it read: while that one stays, no log
// was begun again. It read the oldest's header after the look had read
// the reader's: a log emptied and begun again in between (its writer
// makes the segments after 1 ahead at once) had the new log's file noted,
// and from then on that file, there, kept the look from seeing the log
// begun again, until the new log made the reader's number again (found
// by a review). The state is built here: a listing taken after retention
// removed segment 1, the look's read of the reader's segment 4 done, then
// the log begun again, then the rest of that look. The next listing must
// stop the reader.
func TestNoteOldestAfterTheLogWasBegunAgain(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for seq := uint64(1); seq <= 4; seq++ {
		writeSeg(t, dir, seq, t0+int64(seq)*int64(time.Second), 3, seq < 4)
	}
	r, err := Open(dir, Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		n++
	}
	if n != 12 || r.Err() != nil || r.at().seq != 4 || r.oldest.seq != 1 {
		t.Fatalf("read %d records (err %v), at %+v, oldest noted %+v", n, r.Err(), r.at(), r.oldest)
	}
	if err := os.Remove(filepath.Join(dir, segment.FileName(1))); err != nil { // retention
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.list = l.Segments
	if _, gone, err := r.headerNow(4); gone || err != nil {
		t.Fatalf("segment 4: gone %v, %v", gone, err)
	}
	// Begun again between that read and noteOldest's.
	testfs.Empty(t, dir)
	begun := t0 + 10*int64(time.Second)
	writeSeg(t, dir, 1, begun, 2, false)
	writeSeg(t, dir, 2, begun+1, 0, false)
	writeSeg(t, dir, 3, begun+2, 0, false)
	r.noteOldest(r.at(), nil)
	if err := r.relist(); !errors.Is(err, ErrLogReplaced) {
		t.Fatalf("next listing: %v (oldest noted %+v); want ErrLogReplaced", err, r.oldest)
	}
	if r.Next() || !errors.Is(r.Err(), ErrLogReplaced) {
		t.Fatalf("Next: err %v, want ErrLogReplaced", r.Err())
	}
}
