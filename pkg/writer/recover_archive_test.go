package writer_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
	"github.com/klauspost/compress/zstd"
)

// archivedLog writes a log of several sealed segments and archives all
// but the newest; it returns the directory and the newest archive.
func archivedLog(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	appendUntil(t, w, 5)
	// compress-finished never archives the newest segment file: segment 5
	// is archived only if the file of 6 is there, empty, when the writer
	// closes (it keeps it for the next Open). It is made ahead of need, but
	// on a loaded machine Close can come first.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, segment.FileName(6))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file of segment 6 was not made within a minute")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Run(context.Background(), dir, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, e := range l.Segments {
		if e.Archived {
			newest = e.Path
		}
	}
	if newest == "" {
		t.Fatal("nothing archived")
	}
	return dir, newest
}

// TestOpenWithDamagedNewestArchive: the newest sealed segment is an archive
// that does not decompress. Open read its digest by decompressing it and
// failed, on every try: no record could be appended again. Its summary
// still has the digest; with the summary damaged too, Open goes on and
// counts the damage (verify reports it).
func TestOpenWithDamagedNewestArchive(t *testing.T) {
	for _, whole := range []bool{false, true} {
		dir, newest := archivedLog(t)
		b, err := os.ReadFile(newest)
		if err != nil {
			t.Fatal(err)
		}
		if whole {
			b = b[:len(b)/2] // the summary (at the end) is gone too
		} else {
			b[len(b)/4] ^= 0xff // in the zstd frame
		}
		if err := os.WriteFile(newest, b, 0o640); err != nil {
			t.Fatal(err)
		}
		w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
		if err != nil {
			t.Fatalf("summary damaged too: %v; Open: %v", whole, err)
		}
		if got, want := w.Recovered().DamagedSegments, map[bool]int{false: 0, true: 1}[whole]; got != want {
			t.Errorf("summary damaged too: %v; DamagedSegments %d, want %d", whole, got, want)
		}
		if _, err := w.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoveryRacesCompressFinished: compress-finished replaces the newest
// sealed segment file by its archive between recovery's listing and its
// reading of that segment's footer; Open used the file name it listed and
// failed with "no such file".
func TestRecoveryRacesCompressFinished(t *testing.T) {
	dir := writtenUnsynced(t)
	// A leftover temporary makes recovery fsync the directory between
	// the listing and the footers: the moment to archive everything.
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(99)+segment.TempExt), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	archived := 0
	fs := &crashtest.FaultFS{Before: func(c crashtest.Call) {
		if c.Op == crashtest.OpSyncDir && archived == 0 {
			res, err := archive.Run(context.Background(), dir, archive.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			archived = res.Done
		}
	}}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs})
	if err != nil {
		t.Fatalf("Open beside compress-finished: %v", err)
	}
	if archived == 0 {
		t.Fatal("nothing was archived during recovery: the race was not staged")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMakesNewDirectoriesDurable: Open creates a missing log directory
// and its missing parents, and fsyncs the parent of each before any record
// can be promised: a directory entry lost to a power cut would take the
// whole log with it.
func TestOpenMakesNewDirectoriesDurable(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "log")
	fs, recorded := recordSyncDirs()
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	synced := recorded()
	want := []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b")}
	if len(synced) < len(want) {
		t.Fatalf("directories fsynced: %q, want %q first", synced, want)
	}
	for i, p := range want {
		if synced[i] != p {
			t.Fatalf("directories fsynced: %q, want %q first", synced, want)
		}
	}
}

// TestOpenAfterArchiveWithDamagedSummary: the newest sealed segment is an
// archive whose summary is damaged while its content is intact. Recovery
// read its digest from the summary alone (segment.ReadFooter then did not
// decompress past a damaged summary) and, failing, chained the next
// segment from zeros, which FORMAT.md (section 8, step 2) keeps for an
// archive whose summary and content are both unreadable: verify, which
// reads the content's footer, then reported a broken chain beside the
// damaged summary.
//
// Its copy of the footer without the magic, the summary's CRC made to
// match, is damage too: the summary is written whole, never cut short as
// a sealer's store can be (99072a5 read it as a seal that did not finish,
// and writer.Open failed: "segment is not sealed").
func TestOpenAfterArchiveWithDamagedSummary(t *testing.T) {
	t.Run("checksum", func(t *testing.T) {
		openAfterDamagedSummary(t, func(s []byte) { s[len(s)-8] ^= 0xff }) // in the footer's copy: its CRC fails
	})
	t.Run("footer without its magic", func(t *testing.T) {
		openAfterDamagedSummary(t, func(s []byte) {
			foot := s[16+segment.HeaderSize:][:segment.FooterSize]
			clear(foot[:len(segment.FooterMagic)])
			crc := crc32.Checksum(s[8:len(s)-4], crc32.MakeTable(crc32.Castagnoli))
			binary.LittleEndian.PutUint32(s[len(s)-4:], crc)
		})
	})
}

// openAfterDamagedSummary damages the summary frame of the newest archive
// of a log with damage, then opens, appends to and checks the log.
func openAfterDamagedSummary(t *testing.T, damage func(summary []byte)) {
	dir, newest := archivedLog(t)
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	damage(b[len(b)-segment.SummaryFrameSize:])
	if err := os.WriteFile(newest, b, 0o640); err != nil {
		t.Fatal(err)
	}
	im, err := segment.OpenImage(newest)
	if err != nil {
		t.Fatal(err)
	}
	f, err := im.Footer()
	im.Close()
	if err != nil {
		t.Fatalf("the archive's content: %v", err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.Append([]byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := segment.ReadFooter(filepath.Join(dir, segment.FileName(p.Seq)))
	if err != nil {
		t.Fatal(err)
	}
	if next.PrevDigest != f.Digest {
		t.Errorf("segment %d chains from %x…, not from the digest of the archive before it (%x…), which its content holds",
			p.Seq, next.PrevDigest[:8], f.Digest[:8])
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range rep.Findings {
		if fd.Class == verify.Chain {
			t.Errorf("verify: %+v", fd)
		}
	}
}

// TestOpenAfterArchiveOfUnsealedSegment: the newest archive holds a
// segment that was never sealed (made by hand: compress-finished archives
// only sealed segments), its summary and content without a footer. Open
// failed with "recovery: segment is not sealed", naming no file, on every
// try; it goes on as after a damaged archive (verify reports it).
func TestOpenAfterArchiveOfUnsealedSegment(t *testing.T) {
	dir, newest := archivedLog(t)
	im, err := segment.OpenImage(newest)
	if err != nil {
		t.Fatal(err)
	}
	img := append([]byte(nil), im.Data...)
	im.Close()
	clear(img[len(img)-segment.FooterSize:])
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	arch := segment.AppendSummary(enc.EncodeAll(img, nil), img)
	enc.Close()
	if err := os.WriteFile(newest, arch, 0o640); err != nil {
		t.Fatal(err)
	}
	w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := w.Recovered().DamagedSegments; got != 1 {
		t.Errorf("DamagedSegments %d, want 1", got)
	}
	if _, err := w.Append([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, _, _ := segment.ParseName(filepath.Base(newest))
	found := false
	for _, f := range rep.Findings {
		found = found || f.Seq == seq && f.Class == verify.MissingEnd
	}
	if !found || rep.ExitCode(false) != verify.ExitFindings {
		t.Errorf("verify does not report the unsealed archive %s: %+v", newest, rep.Findings)
	}
}
