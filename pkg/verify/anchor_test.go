package verify

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// anchorLog is a log of four sealed segments, and the anchor of its
// newest, as a CI job would have recorded it.
func anchorLog(t *testing.T) (*testLog, []*seg, Anchor) {
	t.Helper()
	l := newTestLog(t)
	var segs []*seg
	for range 4 {
		segs = append(segs, l.sealed(5))
	}
	return l, segs, Anchor{Seq: 4, Digest: segs[3].footer.Digest}
}

func anchorReport(t *testing.T, rep *Report) AnchorReport {
	t.Helper()
	if len(rep.Anchors) != 1 {
		t.Fatalf("anchors reported: %+v; want one", rep.Anchors)
	}
	return rep.Anchors[0]
}

// TestAnchorCatchesAResealedRewrite: a record changed in segment 2 and
// every footer from there on computed again links as before, full and
// quick: the chain has no key. The anchor of segment 4, taken before,
// catches it.
func TestAnchorCatchesAResealedRewrite(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	for _, quick := range []bool{false, true} {
		rep := mustDir(t, l.dir, Options{Quick: quick, Anchors: []Anchor{anchor}})
		if rep.ExitCode(false) != ExitClean || anchorReport(t, rep) != (AnchorReport{Seq: 4, Digest: hexOf(anchor), Checked: true, OK: true}) {
			t.Fatalf("quick %v, before the rewrite: exit %d, anchors %+v\n%s", quick, rep.ExitCode(false), rep.Anchors, summary(rep))
		}
	}
	s2 := segs[1]
	forged := append([]byte(nil), s2.payload[2]...)
	copy(forged, "forged")
	segment.PutFrame(s2.img, s2.seq, s2.offs[2], segment.TypeData, baseCreated+2*second+3000, forged)
	s2.reseal(t, segs[0].footer.Digest)
	segs[2].reseal(t, s2.footer.Digest)
	segs[3].reseal(t, segs[2].footer.Digest)
	for _, quick := range []bool{false, true} {
		if rep := mustDir(t, l.dir, Options{Quick: quick}); rep.ExitCode(false) != ExitClean {
			t.Fatalf("quick %v: the resealed rewrite is not clean without an anchor (the test forged it wrong):\n%s", quick, summary(rep))
		}
		rep := mustDir(t, l.dir, Options{Quick: quick, Anchors: []Anchor{anchor}})
		a := anchorReport(t, rep)
		if rep.ExitCode(false) != ExitFindings || !has(rep, Chain, 4, footerAt()) || !a.Checked || a.OK {
			t.Fatalf("quick %v, after the rewrite: exit %d, anchors %+v\n%s", quick, rep.ExitCode(false), rep.Anchors, summary(rep))
		}
		if !strings.Contains(rep.Findings[0].Reason, "rewritten since the anchor was taken") {
			t.Errorf("reason %q", rep.Findings[0].Reason)
		}
	}
}

// TestAnchorCatchesTheEndRemoved: removing the newest segments leaves a
// shorter log that verifies clean; the anchor of the last one removed is
// a finding. One older than the oldest segment present (retention) is
// not checked, and no finding.
func TestAnchorCatchesTheEndRemoved(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	for _, s := range segs[2:] {
		if err := os.Remove(s.path); err != nil {
			t.Fatal(err)
		}
	}
	if rep := mustDir(t, l.dir, Options{}); rep.ExitCode(false) != ExitClean {
		t.Fatalf("the shortened log is not clean without an anchor:\n%s", summary(rep))
	}
	rep := mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
	a := anchorReport(t, rep)
	if rep.ExitCode(false) != ExitFindings || !has(rep, Chain, 4, 0) || !a.Checked || a.OK {
		t.Fatalf("exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
	if !strings.Contains(summary(rep), "the log ends at segment 2") {
		t.Errorf("the finding does not say where the log ends:\n%s", summary(rep))
	}

	// Retention removed segment 1: its anchor is checked against segment
	// 2's link to it (TestAnchorOfTheLastSegmentRemoved).
	if err := os.Remove(segs[0].path); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, l.dir, Options{Anchors: []Anchor{{Seq: 1, Digest: segs[0].footer.Digest}}})
	if a := anchorReport(t, rep); rep.ExitCode(false) != ExitClean || !a.Checked || !a.OK {
		t.Fatalf("anchor of the segment before the log: exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
}

// TestAnchorWrongDigest: an anchor that matches nothing the segment ever
// held fails its segment, whose status is FAIL.
func TestAnchorWrongDigest(t *testing.T) {
	l, _, anchor := anchorLog(t)
	anchor.Digest[0] ^= 1
	rep := mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
	if rep.ExitCode(false) != ExitFindings || rep.Segments[3].Status != Fail || rep.Segments[2].Status != Pass {
		t.Fatalf("exit %d, segments %+v\n%s", rep.ExitCode(false), rep.Segments, summary(rep))
	}
	// A digest copied with its last digit wrong: the reason must show
	// where the two differ, not two prefixes that read the same.
	anchor.Digest[0] ^= 1
	anchor.Digest[segment.DigestSize-1] ^= 1
	rep = mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
	if len(rep.Findings) != 1 {
		t.Fatalf("findings %+v\n%s", rep.Findings, summary(rep))
	}
	if r := rep.Findings[0].Reason; !strings.Contains(r, rep.Segments[3].Digest) || !strings.Contains(r, hexOf(anchor)) {
		t.Errorf("reason %q does not show both digests, %s and the anchor's %s", r, rep.Segments[3].Digest, hexOf(anchor))
	}
}

func TestParseAnchor(t *testing.T) {
	var d [segment.DigestSize]byte
	for i := range d {
		d[i] = byte(i * 7)
	}
	a := Anchor{Seq: 42, Digest: d}
	got, err := ParseAnchor(a.String())
	if err != nil || got != a {
		t.Fatalf("ParseAnchor(%q) = %v, %v", a.String(), got, err)
	}
	h := hexOf(a)
	for _, bad := range []string{"", "42", "0:" + h, "x:" + h, "42:" + h[:62], "42:" + h + "00", "42:" + h[:63] + "g", "-1:" + h} {
		if _, err := ParseAnchor(bad); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("ParseAnchor(%q): %v; want an error wrapping os.ErrInvalid", bad, err)
		}
	}
}

// TestAnchorNeedsOneLog: anchors name segments of one log.
func TestAnchorNeedsOneLog(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	other, _, _ := anchorLog(t)
	for _, paths := range [][]string{{l.dir, other.dir}, {segs[0].path}} {
		if _, err := Paths(paths, Options{Anchors: []Anchor{anchor}}); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("Paths(%q) with an anchor: %v; want an error wrapping os.ErrInvalid", paths, err)
		}
	}
}

func hexOf(a Anchor) string { s := a.String(); return s[strings.IndexByte(s, ':')+1:] }

// FuzzParseAnchor: no input panics, and an anchor read prints back as
// text that reads as the same anchor.
func FuzzParseAnchor(f *testing.F) {
	f.Add("42:" + strings.Repeat("ab", segment.DigestSize))
	f.Add("1:" + strings.Repeat("0", 64))
	f.Add("18446744073709551616:00")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAnchor(s)
		if err != nil {
			return
		}
		if b, err := ParseAnchor(a.String()); err != nil || b != a {
			t.Fatalf("%q read as %v, which reads back as %v, %v", s, a, b, err)
		}
	})
}

// TestAnchorOnChangedRecords: records of the anchored segment changed
// and its footer left as it was: its footer still holds the anchor's
// digest, but a full run computes another, so the anchor does not match
// (the digest finding says why). Quick computes nothing: it matches.
func TestAnchorOnChangedRecords(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	s4 := segs[3]
	forged := append([]byte(nil), s4.payload[1]...)
	copy(forged, "forged")
	segment.PutFrame(s4.img, s4.seq, s4.offs[1], segment.TypeData, baseCreated+4*second+2000, forged)
	s4.write(t)
	rep := mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
	if a := anchorReport(t, rep); rep.ExitCode(false) != ExitFindings || !a.Checked || a.OK {
		t.Fatalf("full: exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
	rep = mustDir(t, l.dir, Options{Quick: true, Anchors: []Anchor{anchor}})
	if a := anchorReport(t, rep); !a.Checked || !a.OK {
		t.Fatalf("quick: anchors %+v\n%s", rep.Anchors, summary(rep))
	}
}
