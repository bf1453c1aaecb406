package speccheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

// A target is one byte of one file to damage.
type target struct {
	file string
	off  int64
	what string
}

// fieldTargets lists a byte of every field of the format in dir's log:
// the header, the END frame and the footer of a sealed segment file, a
// DATA frame with padding and a PAD frame with a body, the newest (empty,
// unsealed) segment, and an archive's zstd frame and summary.
func fieldTargets(t *testing.T, dir string, mine *LogReport) []target {
	t.Helper()
	var ts []target
	add := func(file string, base int64, what string, offs ...int64) {
		for _, o := range offs {
			ts = append(ts, target{file, base + o, fmt.Sprintf("%s+%d", what, o)})
		}
	}
	names := logFiles(t, dir)
	header := []int64{0, 7, 8, 9, 10, 12, 14, 16, 24, 27, 32, 40, 59, 60, 63}
	frame := []int64{0, 1, 3, 4, 7, 8, 9, 10, 11, 12, 15, 16, 23}
	var sealedFile, archiveFile string
	var data, pad bool
	for i, name := range names {
		s := mine.Segments[i]
		switch {
		case strings.HasSuffix(name, ".zst"):
			if archiveFile == "" {
				archiveFile = name
			}
			continue
		case i == len(names)-1 && !s.Sealed:
			add(name, 0, "empty segment header", header...)
			add(name, 0, "empty segment record area", 64, 67, 88, 1000, 1024*40)
			add(name, segSize-footerSize, "empty segment footer", 0, 7, 8, 127)
			continue
		case !s.Sealed:
			continue
		case sealedFile == "":
			sealedFile = name
			add(name, 0, "header", header...)
			add(name, segSize-footerSize, "footer", 0, 7, 8, 16, 24, 32, 40, 48, 56, 57, 59, 60, 91, 92, 123, 124, 127)
			for _, e := range s.Events {
				if e.Kind == "end" {
					add(name, e.Off, "END", append(frame, 24, int64(e.Frame.Length)-1)...)
				}
			}
		}
		for _, e := range s.Events {
			l := int64(e.Frame.Length)
			switch {
			case isPadded(e) && !data && l > 24:
				data = true
				add(name, e.Off, "DATA", append(frame, 24, l-1, l)...)
			case e.Kind == "frame" && e.Frame.Type == typePad && !pad && l > 24:
				pad = true
				add(name, e.Off, "PAD", append(frame, 24, l-1)...)
			}
		}
	}
	if sealedFile == "" || archiveFile == "" || !data || !pad {
		t.Fatalf("no sealed segment file (%q), no archive (%q), no DATA frame with padding (%v) or no PAD frame with a body (%v)", sealedFile, archiveFile, data, pad)
	}
	b, err := os.ReadFile(filepath.Join(dir, archiveFile))
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(b))
	add(archiveFile, 0, "zstd frame", 0, 3, 4, 5, 6, 7, n/2, n-summaryLen-4, n-summaryLen-1)
	add(archiveFile, n-summaryLen, "summary", 0, 3, 4, 7, 8, 15, 16, 40, 79, 80, 100, 207, 208, 211)
	return ts
}

// TestCleanRoomRejectsAlike damages one byte of every field, one at a
// time, and holds verify to the clean-room verifier: both reject the log,
// and name the same files, or both accept it.
func TestCleanRoomRejectsAlike(t *testing.T) {
	clean, _ := sharedLog(t)
	// The oldest archives go, as retention removes them: every run below
	// decompresses each archive left, and one is enough.
	var archives []string
	for _, name := range logFiles(t, clean) {
		if strings.HasSuffix(name, ".zst") {
			archives = append(archives, name)
		}
	}
	for _, name := range archives[:max(len(archives)-1, 0)] {
		if err := os.Remove(filepath.Join(clean, name)); err != nil {
			t.Fatal(err)
		}
	}
	mine, err := checkLog(clean)
	if err != nil {
		t.Fatal(err)
	}
	if !mine.Clean() {
		t.Fatalf("clean-room verifier rejects the clean log: %v", mine.Problems)
	}
	// One damaged copy of the log at a time, the file put back after: a
	// copy of the whole log per case would cost more than the checks.
	dir := t.TempDir()
	testfs.CopyFiles(t, clean, dir)
	cases, accepted := 0, []string(nil)
	for i, tg := range fieldTargets(t, clean, mine) {
		flip := []byte{0x01, 0x80}[i%2] // the low bit, then the high one
		path := filepath.Join(dir, tg.file)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(orig)
		b[tg.off] ^= flip
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%s %s byte %d ^ %#x", tg.file, tg.what, tg.off, flip)
		mine, ours := sameVerdict(t, label, dir)
		if !strings.HasSuffix(tg.file, ".zst") {
			compareRecords(t, label, dir, mine)
		}
		cases++
		if len(ours) == 0 {
			accepted = append(accepted, fmt.Sprintf("%s^%#x", tg.what, flip))
		}
		if err := os.WriteFile(path, orig, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d damaged logs, accepted by both: %v", cases, accepted)
}

// compareRecords reads a damaged log with pkg/reader, which passes over
// the damage, and holds the records it returns to the DATA frames the
// clean-room walk found.
func compareRecords(t *testing.T, label, dir string, mine *LogReport) {
	t.Helper()
	var want []segment.Position
	for _, s := range mine.Segments {
		for _, e := range s.Events {
			if isData(e) {
				want = append(want, segment.Position{Seq: s.NameSeq, Offset: e.Off})
			}
		}
	}
	r, err := reader.Open(dir, reader.Options{OnDamage: func(reader.Damage) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []segment.Position
	for r.Next() {
		got = append(got, r.Record().Position)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: the reader returns %d records, the clean-room walk %d (first difference at %d)", label, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []segment.Position) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sameVerdict runs the clean-room verifier and pkg/verify on dir, in full
// and --quick, and reports it when they do not flag the same segment
// files. It returns the clean-room report of the full check and the files
// it flags.
func sameVerdict(t *testing.T, label, dir string) (*LogReport, []string) {
	t.Helper()
	var full *LogReport
	var flagged []string
	for _, quick := range []bool{false, true} {
		mine, err := checkLogMode(dir, quick)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := verify.Dir(dir, verify.Options{Workers: 1, Quick: quick})
		if err != nil {
			t.Fatal(err)
		}
		var theirs, ours []string
		for _, f := range rep.Findings {
			// A crash copied mid-creation leaves an N.seg.tmp, which verify
			// reports as a leftover (class unexpected); FORMAT.md gives such
			// a name no content to check, so the clean room has no verdict.
			if name := filepath.Base(f.Path); !strings.HasSuffix(name, ".seg.tmp") {
				theirs = append(theirs, name)
			}
		}
		for name := range mine.Problems {
			ours = append(ours, name)
		}
		slices.Sort(theirs)
		slices.Sort(ours)
		theirs = slices.Compact(theirs)
		if !slices.Equal(theirs, ours) {
			t.Errorf("%s (quick %v): verify flags %v (%v), clean-room %v (%v)", label, quick, theirs, rep.Findings, ours, mine.Problems)
		}
		if !quick {
			full, flagged = mine, ours
		}
	}
	return full, flagged
}
