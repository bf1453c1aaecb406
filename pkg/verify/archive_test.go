package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	compress "github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

// archive writes s as a .seg.zst archive beside (keep) or instead of it.
func archive(t *testing.T, l *testLog, s *seg, keep bool) string {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	p := l.dir + "/" + segment.ArchiveName(s.seq)
	if err := os.WriteFile(p, segment.AppendSummary(enc.EncodeAll(s.img, nil), s.img), 0o640); err != nil {
		t.Fatal(err)
	}
	if !keep {
		rm(t, s.path)
	}
	return p
}

// Archives are verified like segments, chain included; a damaged archive
// is a finding, and an archive beside its original is reported.
func TestArchives(t *testing.T) {
	l := newTestLog(t)
	s1, s2, s3 := l.sealed(4), l.sealed(4), l.sealed(4)
	archive(t, l, s1, false)
	p2 := archive(t, l, s2, false)
	dup := archive(t, l, s3, true)
	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitClean || len(rep.Segments) != 3 {
		t.Fatalf("exit %d\n%s", rep.ExitCode(false), summary(rep))
	}
	if !rep.Segments[0].Archived || !rep.Segments[1].ChainChecked || !rep.Segments[1].DigestOK || rep.Segments[2].Archived {
		t.Fatalf("segments %+v", rep.Segments)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Class != Unexpected || rep.Findings[0].Path != dup {
		t.Fatalf("duplicate archive not reported:\n%s", summary(rep))
	}

	b, err := os.ReadFile(p2)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xFF
	if err := os.WriteFile(p2, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitFindings || !has(rep, Torn, 2, 0) || rep.Segments[1].State != StateDamaged {
		t.Fatalf("damaged archive: exit %d %+v\n%s", rep.ExitCode(false), rep.Segments[1], summary(rep))
	}
	if f := rep.Findings[0]; !strings.Contains(f.Reason, "cannot open") {
		t.Errorf("reason %q", f.Reason)
	}
	// Its summary is intact: the chain goes on from the digest it holds
	// (TestChainPastArchiveWithLostContent). With the summary damaged
	// too, the digest is unknown.
	if !rep.Segments[2].ChainChecked || rep.Totals.Findings[Chain] != 0 {
		t.Errorf("chain not checked against the summary's digest: %+v\n%s", rep.Segments[2], summary(rep))
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(p2, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if rep = mustDir(t, l.dir, Options{}); rep.Segments[2].ChainChecked {
		t.Errorf("chain checked against a segment whose digest is unknown\n%s", summary(rep))
	}
}

// An archive whose summary (the header and footer copy after the
// compressed frame) does not match the segment is a footer finding.
func TestArchiveSummaryMismatch(t *testing.T) {
	l := newTestLog(t)
	s1, s2 := l.sealed(4), l.sealed(4)
	archive(t, l, s1, false)
	p := archive(t, l, s2, false)
	if rep := mustDir(t, l.dir, Options{}); rep.ExitCode(false) != ExitClean {
		t.Fatalf("exit %d\n%s", rep.ExitCode(false), summary(rep))
	}
	inspectSummary := func() error {
		in, err := Inspect(p)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		return in.SummaryErr
	}
	if err := inspectSummary(); err != nil {
		t.Fatalf("inspect of a good archive: %v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-segment.SummaryFrameSize+20] ^= 1 // inside the copied header
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitFindings || len(rep.Findings) != 1 || rep.Findings[0].Class != Footer ||
		rep.Findings[0].Path != p || !strings.Contains(rep.Findings[0].Reason, "summary") {
		t.Fatalf("exit %d\n%s", rep.ExitCode(false), summary(rep))
	}
	if err := inspectSummary(); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("inspect of a damaged summary: %v", err)
	}
}

// TestSegmentArchivedWhileVerified: a segment file listed, then replaced
// by its archive before it is opened (compress-finished running beside
// verify), is verified as the archive: it once vanished from the report,
// leaving a gap finding in a log that lacked nothing.
func TestSegmentArchivedWhileVerified(t *testing.T) {
	for _, quick := range []bool{false, true} { // --quick reads the summary
		l := newTestLog(t)
		s := l.sealed(4)
		a := archive(t, l, s, false)
		o := Options{Quick: quick}.withDefaults()
		r := checkPath(s.path, &o, nil)
		if r.vanished || r.rep.Path != a || !r.rep.Archived || r.rep.State != StateSealed || r.rep.Records != 4 {
			t.Fatalf("quick %v: vanished %v, report %+v", quick, r.vanished, r.rep)
		}
		rm(t, a)
		if r := checkPath(s.path, &o, nil); !r.vanished {
			t.Fatalf("quick %v: a segment removed with no archive: %+v", quick, r.rep)
		}
		if r := checkPath(a, &o, nil); !r.vanished {
			t.Fatalf("quick %v: an archive removed: %+v", quick, r.rep)
		}
	}
}

// TestRenamedArchive: an archive copied out of its log under another name
// is still read as an archive (it was read as a segment file: its zstd
// magic reported as a damaged header).
func TestRenamedArchive(t *testing.T) {
	l := newTestLog(t)
	s := l.sealed(4)
	p := t.TempDir() + "/evidence.seg.zst"
	if err := os.Rename(archive(t, l, s, false), p); err != nil {
		t.Fatal(err)
	}
	rep, err := Files([]string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(false) != ExitClean || len(rep.Segments) != 1 || !rep.Segments[0].Archived || rep.Segments[0].Records != 4 {
		t.Fatalf("exit %d, segments %+v, findings %+v", rep.ExitCode(false), rep.Segments, rep.Findings)
	}
}

// TestHugeTimeTolerance: creation and sealing times plus or minus the
// tolerance saturate; sealed-at + 2,100,000 h wrapped past the largest
// int64 and every record of an intact log was reported as stamped after
// its sealing.
func TestHugeTimeTolerance(t *testing.T) {
	l := newTestLog(t)
	l.sealed(4)
	l.sealed(4)
	for _, tol := range []time.Duration{2_100_000 * time.Hour, time.Duration(math.MaxInt64)} {
		if rep := mustDir(t, l.dir, Options{TimeTolerance: tol}); rep.ExitCode(false) != ExitClean {
			t.Fatalf("tolerance %v: exit %d, findings %+v", tol, rep.ExitCode(false), rep.Findings)
		}
	}
	// The same at the bottom of int64: a segment created, stamped and
	// sealed at one instant near it. created - tolerance wrapped to the
	// top, and the segment was reported sealed before it was created.
	dir := t.TempDir()
	const at = math.MinInt64 + 1000
	img := segment.NewImage(1, testSize, at)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, at, []byte("early"))
	segment.PutEnd(img, 1, off, at)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, at); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), img, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, tol := range []time.Duration{time.Second, 2_562_047 * time.Hour} {
		if rep := mustDir(t, dir, Options{TimeTolerance: tol}); rep.ExitCode(false) != ExitClean {
			t.Errorf("created and sealed at %d, tolerance %v: exit %d, findings %+v", int64(at), tol, rep.ExitCode(false), rep.Findings)
		}
	}
}

// TestUnsealedArchive: compress-finished archives only sealed segments,
// and recovery takes archives for sealed: an unsealed one is damage (exit
// 1), not crash residue writer.Open would repair (it was exit 3).
func TestUnsealedArchive(t *testing.T) {
	l := newTestLog(t)
	l.sealed(4)
	s := l.sealed(4) // the newest: the log's tail
	clear(s.img[len(s.img)-segment.FooterSize:])
	s.write(t)
	archive(t, l, s, false)
	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitFindings {
		t.Fatalf("exit %d, findings %+v", rep.ExitCode(false), rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Residue {
			t.Errorf("finding marked crash residue: %+v", f)
		}
	}
}

// TestDamagedArchivePlaced: a byte flipped in the compressed data of an
// archive compress-finished made is a torn finding from the segment
// offset where decoding stops (not 0: the blocks before the damage decode)
// to the segment's end, with a reason naming the damaged block's offset in
// the archive file; the archive never passes.
func TestDamagedArchivePlaced(t *testing.T) {
	l := newTestLog(t)
	const size = 1 << 20
	s := l.seal(buildSize(l.next, size, payloads(l.next, 12000), true))
	l.sealed(4) // the newest segment, which compress-finished leaves alone
	res, err := compress.Run(context.Background(), l.dir, compress.Options{Jobs: 1})
	if err != nil || res.Err() != nil {
		t.Fatalf("archive.Run: %v %v", err, res.Err())
	}
	p := filepath.Join(l.dir, segment.ArchiveName(s.seq))
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	frame := len(good) - segment.SummaryFrameSize
	placed, checksumOnly := 0, 0
	for _, at := range []int{frame / 10, frame / 3, frame / 2, frame * 4 / 5} {
		ad, derr := flipRun(t, p, good, at)
		rep := mustDir(t, l.dir, Options{})
		// A checksum mismatch has no block to name; what the archive
		// decodes to is then checked frame by frame, which names the
		// damaged frames. A damaged block leaves the frames before it as
		// they were written: the archive's finding is the only one.
		wantOne := ad.Block >= 0
		if rep.ExitCode(false) != ExitFindings || rep.Segments[0].State != StateDamaged || (len(rep.Findings) == 1) != wantOne || len(rep.Findings) == 0 {
			t.Fatalf("byte %d flipped: exit %d %+v\n%s", at, rep.ExitCode(false), rep.Segments[0], summary(rep))
		}
		f := rep.Findings[0]
		if f.Class != Torn || f.Path != p || f.Offset != ad.Lost || f.Bytes != size-ad.Lost || !strings.HasPrefix(f.Reason, "cannot open: ") {
			t.Fatalf("byte %d flipped (%v): finding %+v", at, derr, f)
		}
		if ad.Block < 0 {
			for _, g := range rep.Findings[1:] {
				if g.Class != Torn && g.Class != Footer || g.Offset <= 0 {
					t.Fatalf("byte %d flipped (%v): a frame finding %+v\n%s", at, derr, g, summary(rep))
				}
			}
			checksumOnly++
			continue
		}
		if !strings.Contains(f.Reason, fmt.Sprintf("archive offset %d", ad.Block)) || ad.Block > int64(at) {
			t.Fatalf("byte %d flipped: reason %q, block at %d", at, f.Reason, ad.Block)
		}
		if at > frame/5 && ad.Lost == 0 {
			t.Errorf("byte %d flipped, well past the first block: segment lost from 0 (%s)", at, f.Reason)
		}
		placed++
	}
	if placed < 2 {
		t.Errorf("%d flips placed in a block", placed)
	}
	t.Logf("%d flips placed in a block, %d caught by the content checksum only", placed, checksumOnly)
}

// TestArchiveWithDamagedHeaderAndMagic: an archive's content whose header
// is damaged and whose footer lost its magic. An archive is written whole,
// so a footer without its magic there is damage (709b5b0), also when the
// footer is decoded against the file name because the header is damaged:
// it was read as a seal that did not finish ("an archive of a segment
// that was never sealed").
func TestArchiveWithDamagedHeaderAndMagic(t *testing.T) {
	l := newTestLog(t)
	l.sealed(4)
	s := l.sealed(4)
	s.img[40] = 1 // reserved header bytes: the header is damaged
	clear(s.img[len(s.img)-segment.FooterSize:][:len(segment.FooterMagic)])
	s.write(t)
	archive(t, l, s, false)
	rep := mustDir(t, l.dir, Options{})
	if !has(rep, Footer, s.seq, footerAt()) {
		t.Fatalf("no footer finding at %d:%d:\n%s", s.seq, footerAt(), summary(rep))
	}
	for _, f := range rep.Findings {
		if strings.Contains(f.Reason, "never sealed") {
			t.Errorf("read as never sealed: %+v", f)
		}
	}
}

// TestArchiveSummaryFooterZeroed: an archive whose summary passes its CRC
// but holds a footer copy of zeros (compress-finished archives sealed
// segments only: forged or damaged) is reported by full verify as one
// footer finding at the copy's offset in the archive, and the chain runs
// through the archive's content, as for a summary with a bad CRC.
func TestArchiveSummaryFooterZeroed(t *testing.T) {
	l := newTestLog(t)
	_, s2, _ := l.sealed(4), l.sealed(4), l.sealed(4)
	p := archive(t, l, s2, false)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	at := len(b) - segment.SummaryFrameSize
	s := b[at:]
	clear(s[16+segment.HeaderSize : len(s)-4])
	binary.LittleEndian.PutUint32(s[len(s)-4:], crc32.Checksum(s[8:len(s)-4], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitFindings || len(rep.Findings) != 1 || !has(rep, Footer, 2, int64(at+16+segment.HeaderSize)) ||
		rep.Findings[0].Path != p || !strings.Contains(rep.Findings[0].Reason, "summary") {
		t.Fatalf("exit %d\n%s", rep.ExitCode(false), summary(rep))
	}
	if sg := rep.Segments[1]; sg.State != StateSealed || !sg.DigestOK || !rep.Segments[2].ChainChecked {
		t.Errorf("the archive's content not read as sealed, or the chain not checked through it: %+v\n%s", rep.Segments, summary(rep))
	}
}
