package archive_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/internal/testlog"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

func appendRecords(t *testing.T, w *writer.Writer, rng *rand.Rand, n, from int, want *[]string) segment.Position {
	t.Helper()
	var pos segment.Position
	for i := range n {
		p := record(rng, 0, from+i)
		var err error
		if pos, err = w.Append(p); err != nil {
			t.Fatal(err)
		}
		*want = append(*want, string(p))
	}
	return pos
}

// Records written by the writer read back identical after compression,
// including while the writer is live, and verify passes on the mixed
// directory.
func TestWriterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	opts := writer.Options{SegmentSize: segment.MinSegmentSize, Sync: writer.SyncNone}
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var want []string
	pos := appendRecords(t, w, rng, 3000, 0, &want)

	// While the writer is live: its active segment is never touched.
	res := run(t, dir, archive.Options{Jobs: 2})
	if res.Done == 0 {
		t.Fatal("nothing compressed beside a live writer")
	}
	if exists(filepath.Join(dir, segment.ArchiveName(pos.Seq))) || !exists(filepath.Join(dir, segment.FileName(pos.Seq))) {
		t.Fatalf("the active segment %d was compressed", pos.Seq)
	}
	appendRecords(t, w, rng, 2000, 3000, &want)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	run(t, dir, archive.Options{Jobs: 2})
	if got := readRecords(t, dir); !slices.Equal(got, want) {
		t.Fatalf("read %d records back, wrote %d (or different content)", len(got), len(want))
	}
	l, _ := segment.List(dir)
	archived := 0
	for _, e := range l.Segments {
		if e.Archived {
			archived++
		}
	}
	if archived < len(l.Segments)-2 {
		t.Errorf("%d of %d segments archived", archived, len(l.Segments))
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if code := rep.ExitCode(false); code != verify.ExitClean {
		t.Errorf("verify exit %d on the mixed directory: %+v", code, rep.Findings)
	}

	// The writer reopens over archives and goes on after them.
	w, err = writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := l.Last()
	pos = appendRecords(t, w, rng, 10, 5000, &want)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if pos.Seq < last.Seq {
		t.Errorf("appended to segment %d, before the newest present %d", pos.Seq, last.Seq)
	}
	if got := readRecords(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after reopening: %d records, want %d", len(got), len(want))
	}
}

// When every segment is an archive (say the newest was archived by hand),
// the writer continues after them: sequence numbers are never reused.
func TestWriterAfterOnlyArchives(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	last := fx.files[4]
	end := segment.Walk(last, 4, segment.HeaderSize, segment.Live, func(segment.Event) bool { return true })
	segment.PutEnd(last, 4, end, 0)
	if _, err := segment.Seal(last, digestOf(t, fx.files[3]), 0, baseTime.UnixNano()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fx.seg(4), last)
	run(t, fx.dir, archive.Options{})
	writeFile(t, fx.zst(4), compressed(t, last))
	os.Remove(fx.seg(4))

	w, err := writer.Open(fx.dir, writer.Options{SegmentSize: segSize, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := w.Append([]byte("after the archives"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if pos.Seq != 5 {
		t.Errorf("appended to segment %d, want 5", pos.Seq)
	}
	got := readRecords(t, fx.dir)
	if len(got) != len(fx.records)+1 || got[len(got)-1] != "after the archives" {
		t.Errorf("read %d records", len(got))
	}
}

func digestOf(t *testing.T, img []byte) [segment.DigestSize]byte {
	t.Helper()
	h, err := segment.DecodeHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := segment.DecodeFooter(img, h)
	if err != nil {
		t.Fatal(err)
	}
	return f.Digest
}

// A damaged archive is reported by verify as damage of that segment, and
// fails to open with an error naming it.
func TestCorruptArchiveReported(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	run(t, fx.dir, archive.Options{})
	b, err := os.ReadFile(fx.zst(2))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	writeFile(t, fx.zst(2), b)
	if _, err := segment.OpenImage(fx.zst(2)); err == nil || !bytes.Contains([]byte(err.Error()), []byte(fx.zst(2))) {
		t.Errorf("OpenImage of a damaged archive: %v", err)
	}
	rep, err := verify.Dir(fx.dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(false) != verify.ExitFindings {
		t.Errorf("verify exit %d, want %d", rep.ExitCode(false), verify.ExitFindings)
	}
	found := false
	for _, f := range rep.Findings {
		// Matched by path: verify leaves Seq 0 for a file it cannot open.
		if f.Path == fx.zst(2) && f.Fatal() {
			found = true
		} else if f.Fatal() {
			t.Errorf("finding on another segment: %+v", f)
		}
	}
	if !found {
		t.Errorf("no finding for segment 2: %+v", rep.Findings)
	}
	// compress-finished leaves it alone: it is already archived.
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if err != nil || len(res.Segments) != 0 {
		t.Errorf("run over a damaged archive: %v, %+v", err, res.Segments)
	}
}

// Keep counts the newest segment when it is sealed (every writer closed
// and none prepared a next one): --keep 1 then leaves only that one, which
// is never compressed anyway, and archives the rest. It kept one too many.
func TestKeepCountsSealedNewest(t *testing.T) {
	dir := t.TempDir()
	var l segment.Listing
	for i := range 3 {
		l = testlog.Write(t, dir, writer.Options{SegmentSize: 4 << 20, Sync: writer.SyncNone}, 1, func(int) []byte { return []byte{byte(i)} })
	}
	if len(l.Segments) != 3 {
		t.Fatalf("%d segment files, want 3 sealed ones", len(l.Segments))
	}
	p, err := archive.PlanDir(dir, archive.Options{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Compress) != 2 || p.Compress[0].Seq != 1 || p.Compress[1].Seq != 2 {
		t.Errorf("--keep 1 compresses %+v; want segments 1 and 2 (skipped: %+v)", p.Compress, p.Skipped)
	}
}
