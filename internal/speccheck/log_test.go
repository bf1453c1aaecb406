package speccheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

const segSize = 64 << 10

// payload is record i's bytes, of the given size.
func payload(i, size int) []byte {
	p := make([]byte, size)
	for j := range p {
		p[j] = byte(i*31 + j*7 + 1)
	}
	return p
}

// recordSizes covers every padding length, the frame header's size and
// the writer's largest record, which fills a segment alone.
func recordSizes(rng *rand.Rand) []int {
	sizes := []int{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33}
	for range 60 {
		sizes = append(sizes, rng.IntN(3000))
	}
	return append(sizes, int(segment.MaxPayload(segSize)), 100, int(segment.MaxPayload(segSize))-8)
}

var shared struct {
	once  sync.Once
	dir   string
	acked map[segment.Position][]byte
	err   error
}

// TestMain removes the log the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
		os.RemoveAll(shared.dir + crashedDir)
	}
	os.Exit(code)
}

// crashedDir, added to the shared log's name, names the copy of it taken
// at the crash, before recovery.
const crashedDir = ".crashed"

// sharedLog is a copy, the test's own, of the log buildLog writes once for
// all the tests, and the records committed in it.
func sharedLog(t *testing.T) (string, map[segment.Position][]byte) {
	t.Helper()
	return sharedCopy(t, "")
}

// sharedCopy is a copy of the shared log's directory with that suffix.
func sharedCopy(t *testing.T, suffix string) (string, map[segment.Position][]byte) {
	t.Helper()
	shared.once.Do(func() {
		shared.err = errors.New("building the shared log failed in another test")
		dir, err := os.MkdirTemp("", "speccheck")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.acked = buildLog(t, dir) // t.Fatal leaves err set
		shared.err = nil
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	dir := t.TempDir()
	testfs.CopyFiles(t, shared.dir+suffix, dir)
	return dir, shared.acked
}

// buildLog writes a real log into dir: records of many sizes
// appended and reserved (committed and aborted), a writer crash with a
// reservation open, recovery, more records and Close, then archives of all
// but the newest sealed segments. It returns every committed record by
// position.
func buildLog(t *testing.T, dir string) map[segment.Position][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	opts := writer.Options{SegmentSize: segSize, MaxRecordSize: segment.MaxPayload(segSize), Sync: writer.SyncNone}
	live := t.TempDir()
	w, err := writer.Open(live, opts)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[segment.Position][]byte{}
	n := 0
	write := func(w *writer.Writer, sizes []int) {
		for _, size := range sizes {
			n++
			p := payload(n, size)
			switch n % 5 {
			case 1: // a PAD frame beside it
				r, err := w.Reserve(rng.IntN(200))
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Abort(); err != nil {
					t.Fatal(err)
				}
			case 2:
				r, err := w.Reserve(size)
				if err != nil {
					t.Fatal(err)
				}
				copy(r.Bytes(), p)
				if err := r.Commit(); err != nil {
					t.Fatal(err)
				}
				acked[r.Position()] = p
				continue
			}
			pos, err := w.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			acked[pos] = p
		}
	}
	write(w, recordSizes(rng))
	open, err := w.Reserve(40) // open at the crash: recovery pads it
	if err != nil {
		t.Fatal(err)
	}
	write(w, []int{10, 20, 30})
	testfs.CopyFiles(t, live, dir)           // the crash: the files as the writer holds them
	testfs.CopyFiles(t, dir, dir+crashedDir) // as recovery will find it
	if err := open.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Recovered(); st.RecoveredSegments == 0 || st.RecoveredFrames == 0 {
		t.Fatalf("recovery padded or sealed nothing: %+v", st)
	}
	write(w, recordSizes(rng)[:40])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close leaves an empty segment after the last only if the next one
	// was ready by then; a writer that appends nothing leaves one always.
	if w, err = writer.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Run(context.Background(), dir, archive.Options{Keep: 2, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	return acked
}

// logFiles are the segment names of dir, in sequence order.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if segName.MatchString(de.Name()) {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)
	return names
}

func describe(v any) string { return fmt.Sprintf("%+v", v) }
