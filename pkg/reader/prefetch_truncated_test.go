package reader

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestPrefetchedSegmentTruncated (review): 52256a3 reads the header of a
// mapped file under Guard in OpenImage, so that a file truncated after it
// was mapped costs an error, not the process. The reader's prefetch opens
// the next segment while the current one is read; a retention job (or
// anyone) truncating that file in the meantime makes openSeg's first read
// of the mapping, im.Footer() (segments.go, not under Guard), raise SIGBUS
// and kill the process: the window the commit closed inside OpenImage is
// open, far wider, right after it. The reader is run in a child process so
// that the crash fails this test instead of the whole binary.
func TestPrefetchedSegmentTruncated(t *testing.T) {
	if os.Getenv("REVIEW_PREFETCH_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPrefetchedSegmentTruncated$", "-test.count=1")
		cmd.Env = append(os.Environ(), "REVIEW_PREFETCH_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			s := string(out)
			if i := strings.Index(s, "\ngoroutine "); i > 0 {
				s = s[:i]
			}
			t.Fatalf("the reader process died: %v\n%s", err, s)
		}
		return
	}
	dir := t.TempDir()
	const size = segment.MinSegmentSize
	now := time.Now().UnixNano()
	var prev [segment.DigestSize]byte
	for seq := uint64(1); seq <= 3; seq++ {
		img := segment.NewImage(seq, size, now)
		off := int64(segment.HeaderSize)
		for range 100 {
			off = segment.PutFrame(img, seq, off, segment.TypeData, now, []byte("some record"))
		}
		segment.PutEnd(img, seq, off, now)
		f, err := segment.Seal(img, prev, 0, now)
		if err != nil {
			t.Fatal(err)
		}
		prev = f.Digest
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir, Options{OnDamage: func(d Damage) { t.Logf("damage: %v", &d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	if r.pre == nil || r.pre.seq != 2 {
		t.Fatalf("no prefetch of segment 2: %+v", r.pre)
	}
	<-r.pre.done
	if err := os.Truncate(filepath.Join(dir, segment.FileName(2)), 4096); err != nil {
		t.Fatal(err)
	}
	n := 1
	for r.Next() {
		n++
	}
	t.Logf("%d records, %d damage reports, err %v", n, r.Damaged(), r.Err())
}
