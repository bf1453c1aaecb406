package verify

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestBlockDamagedArchiveSalvaged: an archive whose block fails to decode
// is checked, after the archive's finding, frame by frame up to where its
// content is lost: a frame damaged there is its own finding, the records
// count is the records read before the loss, and the frame the loss cuts
// short is no second finding overlapping the archive's. Before, the
// archive's finding was the only one and the segment counted 0 records.
func TestBlockDamagedArchiveSalvaged(t *testing.T) {
	l := newTestLog(t)
	const size = 1 << 20
	s := l.seal(buildSize(l.next, size, payloads(l.next, 12000), true))
	l.sealed(4)
	// A record damaged before it was archived: the archive holds it as
	// it was, and only its CRC tells.
	torn := s.offs[10]
	s.img[torn+segment.FrameHeaderSize] ^= 0xff
	p, good, frame := archiveBytes(t, l, s)
	ad := breakBlock(t, p, good, frame, s.offs[20], size)
	want, straddles := uint64(0), false
	for i, off := range s.offs {
		end := off + segment.FrameHeaderSize + int64(len(s.payload[i]))
		switch {
		case end <= ad.Lost && off != torn:
			want++
		case off < ad.Lost && end > ad.Lost:
			straddles = true
		}
	}
	if !straddles {
		t.Fatalf("no frame straddles the loss at %d; the test needs one", ad.Lost)
	}
	rep := mustDir(t, l.dir, Options{})
	sr := rep.Segments[0]
	if rep.ExitCode(false) != ExitFindings || sr.State != StateDamaged || sr.Records != want || len(rep.Findings) != 2 {
		t.Fatalf("exit %d, %+v, want %d records and 2 findings\n%s", rep.ExitCode(false), sr, want, summary(rep))
	}
	// In the order of their offsets.
	if f := rep.Findings[0]; f.Class != Torn || f.Path != p || f.Offset != torn || f.Offset+f.Bytes > ad.Lost {
		t.Fatalf("frame finding %+v, want the frame at %d", f, torn)
	}
	if f := rep.Findings[1]; f.Class != Torn || f.Path != p || f.Offset != ad.Lost || f.Bytes != size-ad.Lost {
		t.Fatalf("archive finding %+v, want torn from %d", f, ad.Lost)
	}
}

// archiveBytes archives s (removing the original) and returns the
// archive's path, its bytes and the length of its zstd frame (what
// precedes the summary frame).
func archiveBytes(t *testing.T, l *testLog, s *seg) (string, []byte, int) {
	t.Helper()
	p := archive(t, l, s, false)
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, good, len(good) - segment.SummaryFrameSize
}

// breakBlock writes good, the archive at p whose zstd frame is frame
// bytes long, back with a run of bytes flipped in the frame's second half
// that breaks a block other than the first, so that its segment of size
// bytes decodes past after and is lost before its footer, and returns
// that damage.
func breakBlock(t *testing.T, p string, good []byte, frame int, after, size int64) *segment.ArchiveDamage {
	t.Helper()
	for at := frame / 2; at+32 <= frame; at += 997 {
		ad, _ := flipRun(t, p, good, at)
		if ad.Block > 0 && ad.Lost > after && ad.Lost < size-segment.FooterSize {
			return ad
		}
	}
	t.Fatal("no run of flipped bytes breaks a block")
	return nil
}

// flipRun writes good to p with the 32 bytes from at flipped, and returns
// the damage reading it meets. A run of bytes, not one: a single flip in
// Huffman-coded literals mostly decodes, to other bytes, and only the
// content checksum at the end of the frame, which places nothing, sees it.
func flipRun(t *testing.T, p string, good []byte, at int) (*segment.ArchiveDamage, error) {
	t.Helper()
	bad := bytes.Clone(good)
	for i := at; i < at+32; i++ {
		bad[i] ^= 0x5a
	}
	if err := os.WriteFile(p, bad, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := segment.ReadArchive(p)
	var ad *segment.ArchiveDamage
	if !errors.As(err, &ad) {
		t.Fatalf("bytes %d..%d flipped: %v, not an *ArchiveDamage", at, at+32, err)
	}
	return ad, err
}

// TestSalvagedArchiveGarbageAfterEnd: in a damaged archive whose content
// is lost after the END frame, bytes after END up to the loss are still
// checked: garbage there is its own finding, ending where the archive's
// begins. The frame-by-frame check of salvaged archives once stopped at
// END and never looked.
func TestSalvagedArchiveGarbageAfterEnd(t *testing.T) {
	l := newTestLog(t)
	const size = 1 << 20
	s := l.seal(buildSize(l.next, size, payloads(l.next, 200), true))
	l.sealed(4)
	junk := s.end + segment.FrameHeaderSize + 40
	s.img[junk] = 0x7f // after END: not covered by the footer's digest
	p, good, frame := archiveBytes(t, l, s)
	var ad *segment.ArchiveDamage
	// From the end: the blocks after the records' are the zeros'.
	for at := frame - 32; ; at-- {
		if at < frame/2 {
			t.Fatal("no run of flipped bytes loses the content between the garbage and the footer")
		}
		ad, _ = flipRun(t, p, good, at)
		if ad.Lost > junk+4096 && ad.Lost < size-segment.FooterSize {
			break
		}
	}
	rep := mustDir(t, l.dir, Options{})
	if len(rep.Findings) != 2 {
		t.Fatalf("%d findings, want 2 (the garbage, the archive)\n%s", len(rep.Findings), summary(rep))
	}
	if f := rep.Findings[0]; f.Class != GarbageAfterEnd || f.Path != p || f.Offset != junk || f.Offset+f.Bytes != ad.Lost {
		t.Fatalf("first finding %+v, want garbage from %d to the loss at %d", f, junk, ad.Lost)
	}
	if f := rep.Findings[1]; f.Class != Torn || f.Offset != ad.Lost {
		t.Fatalf("second finding %+v, want the archive's from %d", f, ad.Lost)
	}
}

// TestRenamedDamagedArchiveSeq: a damaged archive given by a name that
// holds no sequence number (evidence.seg.zst) is placed by the header its
// content decodes to, the segment and every finding alike. The archive's
// own finding ("cannot open") kept the 0 of the unnumbered name while the
// segment and its frame findings said 70: `verify -o json` gave
// position "0:0" and "70:32544" for one file.
func TestRenamedDamagedArchiveSeq(t *testing.T) {
	l := newTestLog(t)
	const size = 1 << 20
	s := l.seal(buildSize(l.next, size, payloads(l.next, 12000), true))
	_, good, frame := archiveBytes(t, l, s)
	p := t.TempDir() + "/evidence.seg.zst"
	for _, at := range []int{frame / 10, frame / 3, frame / 2, frame * 4 / 5} {
		ad, _ := flipRun(t, p, good, at)
		rep, err := Files([]string{p}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Segments) != 1 || len(rep.Findings) == 0 {
			t.Fatalf("bytes from %d flipped: segments %+v, findings %+v", at, rep.Segments, rep.Findings)
		}
		if got := rep.Segments[0].Seq; got != s.seq {
			t.Errorf("bytes from %d flipped (block %d): segment seq %d, want %d", at, ad.Block, got, s.seq)
		}
		for _, f := range rep.Findings {
			if f.Seq != s.seq {
				t.Errorf("bytes from %d flipped (block %d): finding %s at %s, want segment %d", at, ad.Block, f.Class, f.Position(), s.seq)
			}
		}
	}
}

// TestSalvagedArchiveWithDamagedHeader: a damaged archive whose content's
// header is damaged too is checked frame by frame up to the loss under
// the sequence number of its file name, as a whole segment with a damaged
// header is (checkImage) and as tail reads it (FORMAT.md section 3). The
// header's finding was the only one besides the archive's: no frame
// checked, 0 records, where tail -n +1 printed every record before the
// loss, and a record torn among them was reported by tail, not by verify.
func TestSalvagedArchiveWithDamagedHeader(t *testing.T) {
	l := newTestLog(t)
	const size = 1 << 20
	s := l.seal(buildSize(l.next, size, payloads(l.next, 12000), true))
	l.sealed(4)
	s.img[0] ^= 0xff // the magic: the header is damaged
	torn := s.offs[10]
	s.img[torn+segment.FrameHeaderSize] ^= 0xff
	p, good, frame := archiveBytes(t, l, s)
	ad := breakBlock(t, p, good, frame, s.offs[20], size)
	want := uint64(0)
	for i, off := range s.offs {
		if end := off + segment.FrameHeaderSize + int64(len(s.payload[i])); end <= ad.Lost && off != torn {
			want++
		}
	}
	rep := mustDir(t, l.dir, Options{})
	sr := rep.Segments[0]
	// The summary's copy of the header is the damaged one too: a footer
	// finding, as for an archive that decodes whole.
	if rep.ExitCode(false) != ExitFindings || sr.State != StateDamaged || sr.Records != want || len(rep.Findings) != 4 {
		t.Fatalf("exit %d, %+v, want %d records and 4 findings\n%s", rep.ExitCode(false), sr, want, summary(rep))
	}
	for i, at := range []int64{0, torn, -1, ad.Lost} {
		f := rep.Findings[i]
		if at < 0 { // in the summary frame, after the zstd frame
			if f.Class != Footer || f.Path != p || f.Offset < int64(frame) || f.Offset >= int64(len(good)) {
				t.Errorf("finding %d: %+v, want the summary's footer finding", i, f)
			}
		} else if f.Class != Torn || f.Path != p || f.Offset != at {
			t.Errorf("finding %d: %+v, want torn at %d", i, f, at)
		}
	}
	if f := rep.Findings[0]; !strings.HasPrefix(f.Reason, "segment header: ") {
		t.Errorf("header finding %q, want it said as a whole segment's is", f.Reason)
	}
}
