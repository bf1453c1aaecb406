package verify

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestAnchorRemovedWhileRead: the anchored segment, the newest, removed
// after the log was listed and before it was opened, while the older
// ones stay, is the end of the log cut as surely as one removed before
// the run: a finding. It was taken for retention's (which removes the
// oldest first) and left unchecked, and the run passed. Retention
// removing the anchored segment with every older one while the log is
// read still leaves it unchecked.
func TestAnchorRemovedWhileRead(t *testing.T) {
	l, _, _ := anchorLog(t)
	for range 3 {
		l.sealed(5)
	}
	o := removeOnFirstProgress(t, l.dir, 7)
	o.Anchors = []Anchor{{Seq: 7, Digest: l.prev}}
	rep := mustDir(t, l.dir, o)
	a := anchorReport(t, rep)
	if rep.ExitCode(false) != ExitFindings || !has(rep, Chain, 7, 0) || !a.Checked || a.OK {
		t.Fatalf("the anchored newest segment removed while read: exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
	if !strings.Contains(summary(rep), "removed while the log was read") {
		t.Errorf("the finding does not say when it was removed:\n%s", summary(rep))
	}

	l, segs, _ := anchorLog(t)
	for range 3 {
		l.sealed(5)
	}
	o = removeOnFirstProgress(t, l.dir, 1, 2, 3)
	o.Anchors = []Anchor{{Seq: 3, Digest: segs[2].footer.Digest}}
	rep = mustDir(t, l.dir, o)
	if a := anchorReport(t, rep); rep.ExitCode(false) != ExitClean || a.Checked {
		t.Fatalf("retention while read: exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
}

// TestNextAnchor: a clean full run of the log directory offers its
// newest sealed segment's digest; a quick one (digests not computed) and
// one of a segment file (the others not checked) offer none.
func TestNextAnchor(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	if a, ok := mustDir(t, l.dir, Options{}).NextAnchor(); !ok || a != anchor {
		t.Errorf("full run: %v, %v; want %v", a, ok, anchor)
	}
	if a, ok := mustDir(t, l.dir, Options{Quick: true}).NextAnchor(); ok {
		t.Errorf("quick run offers %v", a)
	}
	rep, err := Files([]string{segs[3].path}, Options{})
	if err != nil || rep.ExitCode(false) != ExitClean {
		t.Fatalf("%v\n%s", err, summary(rep))
	}
	if a, ok := rep.NextAnchor(); ok {
		t.Errorf("a run of segment file %s offers %v", segs[3].path, a)
	}
}

// TestAnchorOnALostFooter: the anchored segment lost its footer (zeroed),
// every byte its digest covers intact: the digest computed again from its
// frames, as the chain does for the next link, is the anchor's, and the
// anchor matches; the segment's own finding stays. It was reported as
// not matching ("no footer to compare"), a chain finding of a rewrite
// that did not happen. A record changed there as well does not match.
func TestAnchorOnALostFooter(t *testing.T) {
	for _, newest := range []bool{false, true} {
		l, segs, _ := anchorLog(t)
		if newest {
			if err := os.Remove(segs[3].path); err != nil {
				t.Fatal(err)
			}
		}
		s := segs[2]
		anchor := Anchor{Seq: 3, Digest: s.footer.Digest}
		clear(s.img[len(s.img)-segment.FooterSize:])
		s.write(t)
		rep := mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
		if a := anchorReport(t, rep); !a.Checked || !a.OK || rep.Totals.Findings[Chain] != 0 {
			t.Fatalf("newest %v: anchors %+v\n%s", newest, rep.Anchors, summary(rep))
		}

		segment.PutFrame(s.img, s.seq, s.offs[1], segment.TypeData, baseCreated+3*second+2000, []byte(strings.ToUpper(string(s.payload[1]))))
		s.write(t)
		rep = mustDir(t, l.dir, Options{Anchors: []Anchor{anchor}})
		if a := anchorReport(t, rep); !a.Checked || a.OK || !has(rep, Chain, 3, footerAt()) || !strings.Contains(summary(rep), "computed from its frames") {
			t.Fatalf("newest %v, a record changed: anchors %+v\n%s", newest, rep.Anchors, summary(rep))
		}
	}
}

// TestAnchorNeedsADirectoryNamesTheFile: anchors given with a segment
// file say that a file was named, not that its directory is one:
// "anchors need a log directory, and /…/log is a segment file".
func TestAnchorNeedsADirectoryNamesTheFile(t *testing.T) {
	l, segs, anchor := anchorLog(t)
	_, err := Paths([]string{segs[0].path}, Options{Anchors: []Anchor{anchor}})
	if !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), segs[0].path) || strings.Contains(err.Error(), l.dir+" is") {
		t.Fatalf("anchors with segment file %s: %v", segs[0].path, err)
	}
}

// TestAnchorOfTheLastSegmentRemoved: retention removed segments 1 and 2,
// the anchor is of 2. Segment 3's previous digest is 2's: the link pins
// it. It was left unchecked, as older than the log, so segments 3 and 4
// rewritten, 3's footer computed again from any previous digest, passed.
func TestAnchorOfTheLastSegmentRemoved(t *testing.T) {
	l, segs, _ := anchorLog(t)
	anchor := Anchor{Seq: 2, Digest: segs[1].footer.Digest}
	for _, s := range segs[:2] {
		if err := os.Remove(s.path); err != nil {
			t.Fatal(err)
		}
	}
	for _, quick := range []bool{false, true} {
		rep := mustDir(t, l.dir, Options{Quick: quick, Anchors: []Anchor{anchor}})
		if a := anchorReport(t, rep); rep.ExitCode(false) != ExitClean || !a.Checked || !a.OK {
			t.Fatalf("quick %v, before the rewrite: exit %d, anchors %+v\n%s", quick, rep.ExitCode(false), rep.Anchors, summary(rep))
		}
	}
	// Older than that, nothing of the anchored segment is left to compare.
	rep := mustDir(t, l.dir, Options{Anchors: []Anchor{{Seq: 1, Digest: segs[0].footer.Digest}}})
	if a := anchorReport(t, rep); rep.ExitCode(false) != ExitClean || a.Checked || a.OK {
		t.Fatalf("anchor older than the log: exit %d, anchors %+v\n%s", rep.ExitCode(false), rep.Anchors, summary(rep))
	}
	s3 := segs[2]
	forged := append([]byte(nil), s3.payload[1]...)
	copy(forged, "forged")
	segment.PutFrame(s3.img, s3.seq, s3.offs[1], segment.TypeData, baseCreated+2*second+3000, forged)
	s3.reseal(t, [segment.DigestSize]byte{})
	segs[3].reseal(t, s3.footer.Digest)
	for _, quick := range []bool{false, true} {
		if rep := mustDir(t, l.dir, Options{Quick: quick}); rep.ExitCode(false) != ExitClean {
			t.Fatalf("quick %v: the rewrite is not clean without an anchor (the test forged it wrong):\n%s", quick, summary(rep))
		}
		rep := mustDir(t, l.dir, Options{Quick: quick, Anchors: []Anchor{anchor}})
		a := anchorReport(t, rep)
		if rep.ExitCode(false) != ExitFindings || !has(rep, Chain, 3, footerAt()) || !a.Checked || a.OK {
			t.Fatalf("quick %v, after the rewrite: exit %d, anchors %+v\n%s", quick, rep.ExitCode(false), rep.Anchors, summary(rep))
		}
		if r := rep.Findings[0].Reason; !strings.Contains(r, "previous digest") || !strings.Contains(r, hexOf(anchor)) {
			t.Errorf("reason %q", r)
		}
	}
}
