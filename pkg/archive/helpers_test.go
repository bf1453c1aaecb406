package archive_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// baseTime is when the fixture segments are sealed: segment seq is sealed
// seq hours after it.
var baseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is a log directory built with the segment builders, and the
// bytes of every segment file in it, to compare with after any run.
type fixture struct {
	dir     string
	files   map[uint64][]byte   // segment seq -> file bytes
	records []string            // every DATA payload, in log order
	segRecs map[uint64][]string // segment seq -> its DATA payloads
	last    uint64
}

// record makes a realistic, unique audit line.
func record(rng *rand.Rand, seq uint64, i int) []byte {
	users := []string{"alice", "bob", "carol", "dave", "mallory"}
	actions := []string{"login", "logout", "read", "write", "delete", "grant"}
	return fmt.Appendf(nil, `{"ts":"2026-01-01T00:%02d:%02d.%06dZ","user":%q,"action":%q,"resource":"/srv/data/%d/%d","ok":%t,"id":"%d-%d"}`,
		i/60%60, i%60, rng.IntN(1e6), users[rng.IntN(len(users))], actions[rng.IntN(len(actions))],
		rng.IntN(100), rng.IntN(10000), rng.IntN(10) != 0, seq, i)
}

// buildSegment fills a segment of size bytes with records up to about fill
// (a fraction of the record area) and seals it unless sealed is false.
func buildSegment(t testing.TB, rng *rand.Rand, seq uint64, size int64, fill float64, sealed bool, prev [segment.DigestSize]byte) ([]byte, []string, [segment.DigestSize]byte) {
	t.Helper()
	img := segment.NewImage(seq, size, baseTime.UnixNano())
	off := int64(segment.HeaderSize)
	stop := segment.HeaderSize + int64(fill*float64(segment.DataLimit(size)-segment.HeaderSize))
	var recs []string
	for i := 0; ; i++ {
		p := record(rng, seq, i)
		if off+segment.FrameSize(len(p)) > min(stop, segment.DataLimit(size)) {
			break
		}
		off = segment.PutFrame(img, seq, off, segment.TypeData, baseTime.UnixNano()+int64(i), p)
		recs = append(recs, string(p))
	}
	if !sealed {
		return img, recs, prev
	}
	segment.PutEnd(img, seq, off, baseTime.UnixNano())
	f, err := segment.Seal(img, prev, 0, baseTime.Add(time.Duration(seq)*time.Hour).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	return img, recs, f.Digest
}

// newFixture writes n segments of size bytes into a new directory: all
// sealed but the last, which is half full and unsealed like a live one.
func newFixture(t testing.TB, n int, size int64) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), files: map[uint64][]byte{}, segRecs: map[uint64][]string{}, last: uint64(n)}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	var prev [segment.DigestSize]byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		last := seq == uint64(n)
		fill := 1.0
		if last {
			fill = 0.5
		}
		img, recs, d := buildSegment(t, rng, seq, size, fill, !last, prev)
		prev = d
		fx.files[seq] = img
		fx.records = append(fx.records, recs...)
		fx.segRecs[seq] = recs
		writeFile(t, filepath.Join(fx.dir, segment.FileName(seq)), img)
	}
	return fx
}

// clone copies the fixture's directory (as it is now) into a new one.
func (fx *fixture) clone(t testing.TB) *fixture {
	t.Helper()
	c := *fx
	c.dir = t.TempDir()
	des, err := os.ReadDir(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(fx.dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(c.dir, de.Name()), b)
	}
	return &c
}

// forget removes segments from what the fixture expects, as a retention
// job removing them means: the checks then want them gone, original and
// archive, and their records not read. The map is copied first: a clone
// shares it with the fixture it was made from.
func (fx *fixture) forget(seqs ...uint64) {
	fx.files = maps.Clone(fx.files)
	for _, seq := range seqs {
		delete(fx.files, seq)
	}
	fx.records = nil
	for seq := uint64(1); seq <= fx.last; seq++ {
		if _, ok := fx.files[seq]; ok {
			fx.records = append(fx.records, fx.segRecs[seq]...)
		}
	}
}

// checkGone asserts that nothing of the segments seqs is left in the
// directory: no original, no archive, no temp file.
func (fx *fixture) checkGone(t testing.TB, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		for _, p := range []string{fx.seg(seq), fx.zst(seq), fx.zst(seq) + segment.TempExt} {
			if exists(p) {
				t.Errorf("segment %d: %s is there, want it gone", seq, p)
			}
		}
	}
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func (fx *fixture) seg(seq uint64) string { return filepath.Join(fx.dir, segment.FileName(seq)) }
func (fx *fixture) zst(seq uint64) string { return filepath.Join(fx.dir, segment.ArchiveName(seq)) }

// checkSafe asserts the invariant that must hold at every instant: for
// every segment, the original is there and intact, or a complete archive
// decompressing to exactly the original is, its summary (if any) a copy of
// the original's header and footer.
func (fx *fixture) checkSafe(t testing.TB) {
	t.Helper()
	for seq, want := range fx.files {
		if b, err := os.ReadFile(fx.seg(seq)); err == nil {
			if !bytes.Equal(b, want) {
				t.Fatalf("segment %d: original changed", seq)
			}
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		b, err := segment.ReadArchive(fx.zst(seq))
		if err != nil {
			t.Fatalf("segment %d: original gone and archive unreadable: %v", seq, err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("segment %d: original gone and archive differs", seq)
		}
		im, err := segment.OpenImage(fx.zst(seq))
		if err != nil {
			t.Fatal(err)
		}
		err = im.CheckSummary()
		im.Close()
		if err != nil {
			t.Fatalf("segment %d: original gone and the archive's summary is wrong: %v", seq, err)
		}
	}
}

// checkRecords asserts that reading the directory (originals preferred,
// archives otherwise, as every reader does) yields every record exactly
// once, in order.
func (fx *fixture) checkRecords(t testing.TB) {
	t.Helper()
	got := readRecords(t, fx.dir)
	if !slices.Equal(got, fx.records) {
		t.Fatalf("read %d records, want %d (or different content/order)", len(got), len(fx.records))
	}
}

func readRecords(t testing.TB, dir string) []string {
	t.Helper()
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range l.Segments {
		im, err := segment.OpenImage(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := im.Check(); err != nil {
			t.Fatal(err)
		}
		im.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			switch {
			case ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData:
				got = append(got, string(ev.Frame.Payload))
			case ev.Kind == segment.EvEnd, ev.Kind == segment.EvTail:
			default:
				t.Errorf("%s: unexpected %s at %d", e.Path, ev.Kind, ev.Offset)
			}
			return true
		})
		im.Close()
	}
	return got
}

// checkFinal asserts the state after a complete run without options: every
// sealed segment but the newest archived, the newest untouched, no temps,
// and no archive with a second name (a rename by link and unlink,
// archive.LinkNoReplace, left half done).
func (fx *fixture) checkFinal(t testing.TB) {
	t.Helper()
	fx.checkSafe(t)
	for seq := range fx.files {
		if seq == fx.last {
			if !exists(fx.seg(seq)) || exists(fx.zst(seq)) {
				t.Errorf("newest segment %d was touched", seq)
			}
			continue
		}
		if exists(fx.seg(seq)) || !exists(fx.zst(seq)) {
			t.Errorf("segment %d: original %v, archive %v; want only the archive", seq, exists(fx.seg(seq)), exists(fx.zst(seq)))
		} else if n := links(t, fx.zst(seq)); n != 1 {
			t.Errorf("segment %d: the archive has %d names; want 1", seq, n)
		}
	}
	des, _ := os.ReadDir(fx.dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), segment.TempExt) {
			t.Errorf("leftover %s", de.Name())
		}
	}
	fx.checkRecords(t)
}

// links is the number of names the file at path has.
func links(t testing.TB, path string) uint64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(st.Sys().(*syscall.Stat_t).Nlink)
}
