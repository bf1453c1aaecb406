package crashtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// frameRef is a DATA frame of the pristine log: where it is and how many
// bytes of it the CRC covers (header and payload; not the alignment
// padding after it).
type frameRef struct {
	pos    segment.Position
	length int64
}

// pristine is a sealed log built once for the corruption matrix.
type pristine struct {
	dir    string
	files  map[uint64][]byte // segment files by sequence
	sealed []uint64          // sequences of the sealed segments
	frames map[uint64][]frameRef
	total  int
}

// buildPristine writes a log of several sealed segments, with PAD frames
// from aborted reservations among the records, and closes it.
func buildPristine(t *testing.T) *pristine {
	t.Helper()
	p := &pristine{dir: t.TempDir(), files: map[uint64][]byte{}, frames: map[uint64][]frameRef{}}
	w, err := writer.Open(p.dir, writer.Options{SegmentSize: testSegment, Sync: writer.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	// One goroutine, so that the layout (and a seed's trials) repeat.
	for i := range 450 {
		for g := range 4 {
			id := RecordID{Run: 1, G: uint32(g), I: uint64(i)}
			if i%17 == 3 {
				r, err := w.Reserve(RecordLen(id))
				if err != nil {
					t.Fatal(err)
				}
				PutRecord(r.Bytes(), id)
				r.Abort()
			}
			if _, err := w.Append(AppendRecord(nil, id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Segments {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		p.files[e.Seq] = b
		h, err := segment.DecodeHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := segment.DecodeFooter(b, h); err != nil {
			continue // the prepared, empty segment
		}
		p.sealed = append(p.sealed, e.Seq)
		segment.Walk(b, e.Seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
				p.frames[e.Seq] = append(p.frames[e.Seq], frameRef{segment.Position{Seq: e.Seq, Offset: ev.Offset}, int64(ev.Frame.Length)})
				p.total++
			}
			return true
		})
	}
	if len(p.sealed) < 4 || p.total != 4*450 {
		t.Fatalf("pristine log: %d sealed segments, %d records", len(p.sealed), p.total)
	}
	return p
}

// damage is one corruption applied to one segment file.
type damage struct {
	kind string
	seq  uint64
	off  int64 // first byte changed (or the new length, for truncate)
	n    int64
}

func (d damage) String() string {
	return fmt.Sprintf("%s of segment %d at %d (+%d)", d.kind, d.seq, d.off, d.n)
}

var damageKinds = []string{"bitflip", "zero512", "zero4k", "truncate"}

// apply returns the damaged file and the byte ranges that differ from the
// original (for truncate: from the new end to the old one).
func (d *damage) apply(rng *rand.Rand, orig []byte) (out []byte, changed [][2]int64) {
	size := int64(len(orig))
	out = append([]byte(nil), orig...)
	switch d.kind {
	case "bitflip":
		d.off, d.n = rng.Int64N(size), 1
		out[d.off] ^= 1 << rng.IntN(8)
	case "zero512", "zero4k":
		d.n = 512
		if d.kind == "zero4k" {
			d.n = 4096
		}
		d.off = rng.Int64N(size/d.n) * d.n
		clear(out[d.off : d.off+d.n])
	case "truncate":
		d.off = rng.Int64N(size)
		d.n = size - d.off
		return out[:d.off], [][2]int64{{d.off, size}}
	}
	return d.applyGiven(orig, out)
}

// applyGiven returns the ranges where out differs from orig.
func (d *damage) applyGiven(orig, out []byte) ([]byte, [][2]int64) {
	var changed [][2]int64
	size := int64(len(orig))
	for i := int64(0); i < size; {
		if out[i] == orig[i] {
			i++
			continue
		}
		j := i
		for j < size && out[j] != orig[j] {
			j++
		}
		changed = append(changed, [2]int64{i, j})
		i = j
	}
	return out, changed
}

func overlaps(a0, a1, b0, b1 int64) bool { return a0 < b1 && b0 < a1 }

// corruptFigures are the matrix's counts, per damage kind.
type corruptFigures struct {
	trials, noop, detected         int
	damagedRecords, flagged, lostR int
	headerHits, headerRecords      int
	asResidue                      int
}

// TestCorruption damages sealed segments of a clean log — one bit flipped,
// a 512-byte sector or a 4 KiB page zeroed at a random aligned place, the
// file truncated at a random length — and checks, for every trial:
// verify fails the log (exit 1) whenever a byte changed and passes it when
// the damage changed nothing; the records verify flags are exactly the
// records whose covered bytes changed; the reader returns every other
// record, each intact, and reports damage covering each lost one. A
// damaged segment header costs the reader only the header: it reads the
// frames under the file name's sequence, as verify checks them, unless
// the file is cut too short for a segment, when it skips it whole.
func TestCorruption(t *testing.T) {
	p := buildPristine(t)
	n := iterations(240)
	rng := rand.New(rand.NewPCG(seedFor(t), 3))
	figs := map[string]*corruptFigures{}
	for _, k := range damageKinds {
		figs[k] = &corruptFigures{}
	}
	for it := range n {
		d := damage{kind: damageKinds[it%len(damageKinds)], seq: p.sealed[rng.IntN(len(p.sealed))]}
		img, changed := d.apply(rng, p.files[d.seq])
		runTrial(t, p, d, img, changed, figs[d.kind])
		if t.Failed() {
			t.Fatalf("trial %d: %v", it, d)
		}
	}
	var all corruptFigures
	for _, k := range damageKinds {
		f := figs[k]
		summary(t, "kind=%s trials=%d no_change=%d detected_by_verify=%d/%d records_damaged=%d flagged_by_verify=%d lost_by_reader=%d reported_as_crash_residue=%d header_hits=%d (records the reader skipped with the header: %d); checked: no finding on an undamaged segment",
			k, f.trials, f.noop, f.detected, f.trials-f.noop, f.damagedRecords, f.flagged, f.lostR, f.asResidue, f.headerHits, f.headerRecords)
		all.trials += f.trials
		all.noop += f.noop
		all.detected += f.detected
		all.damagedRecords += f.damagedRecords
	}
	summary(t, "all kinds: trials=%d with_changes=%d detected=%d records_damaged=%d (log of %d records in %d sealed segments)",
		all.trials, all.trials-all.noop, all.detected, all.damagedRecords, p.total, len(p.sealed))
}

// runTrial writes the pristine log with one segment replaced by img and
// checks it.
func runTrial(t *testing.T, p *pristine, d damage, img []byte, changed [][2]int64, fig *corruptFigures) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Dir(dir))
	for seq, b := range p.files {
		if seq == d.seq {
			b = img
		}
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	corruptTrial(t, p, dir, d, img, changed, fig)
}

// TestCorruptionAtTheEnd zeroes the end of a sealed segment — the records
// before END, the END frame, the footer — in a middle segment and in the
// newest sealed one, the latter both with the empty segment the writer
// prepared after it and as the newest file of the log (whether Close
// leaves a prepared segment depends on timing). With END (and maybe the
// footer) gone, the walk meets zeros up to the record limit: verify and
// the reader must still locate the records lost there, not just say where
// the data stops.
func TestCorruptionAtTheEnd(t *testing.T) {
	full := buildPristine(t)
	newest := full.sealed[len(full.sealed)-1]
	alone := *full // the log without any file after its newest sealed segment
	alone.files = map[uint64][]byte{}
	for seq, b := range full.files {
		if seq <= newest {
			alone.files[seq] = b
		}
	}
	type trialLog struct {
		p     *pristine
		seq   uint64
		label string
	}
	logs := []trialLog{{full, full.sealed[len(full.sealed)/2], ""}, {&alone, newest, ", the newest file"}}
	if len(alone.files) < len(full.files) {
		logs = append(logs, trialLog{full, newest, ", an empty segment after it"})
	}
	for _, tc := range logs {
		p, seq := tc.p, tc.seq
		b := p.files[seq]
		size := int64(len(b))
		h, _ := segment.DecodeHeader(b)
		ft, _ := segment.DecodeFooter(b, h)
		frs := p.frames[seq]
		last := frs[len(frs)-1].pos.Offset
		page := ft.EndOffset &^ 4095
		for _, c := range []struct {
			name     string
			from, to int64
		}{
			{"page holding END", page, min(page+4096, size)},
			{"sector holding END", ft.EndOffset &^ 511, ft.EndOffset&^511 + 512},
			{"last record to the footer", last, size - segment.FooterSize},
			{"last record to the end of the file", last, size},
			{"footer", size - segment.FooterSize, size},
		} {
			t.Run(fmt.Sprintf("segment %d%s/%s", seq, tc.label, c.name), func(t *testing.T) {
				img := append([]byte(nil), b...)
				clear(img[c.from:c.to])
				d := damage{kind: "zero", seq: seq, off: c.from, n: c.to - c.from}
				_, changed := d.applyGiven(b, img)
				runTrial(t, p, d, img, changed, &corruptFigures{})
			})
		}
	}
}

func corruptTrial(t *testing.T, p *pristine, dir string, d damage, img []byte, changed [][2]int64, fig *corruptFigures) {
	t.Helper()
	fig.trials++
	header := false
	for _, c := range changed {
		header = header || c[0] < segment.HeaderSize
	}
	// Records whose covered bytes changed.
	damaged := map[segment.Position]bool{}
	for _, f := range p.frames[d.seq] {
		for _, c := range changed {
			if overlaps(f.pos.Offset, f.pos.Offset+f.length, c[0], c[1]) {
				damaged[f.pos] = true
			}
		}
	}
	fig.damagedRecords += len(damaged)
	// A file cut inside its header has no segment's size: the reader
	// cannot read its frames by the file name (Image.ReadByName).
	unreadable := header && segment.ValidSize(int64(len(img))) != nil

	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) == 0 {
		fig.noop++
		if rep.ExitCode(true) != verify.ExitClean {
			t.Fatalf("%v changed nothing, yet verify exits %d: %+v", d, rep.ExitCode(true), rep.Findings)
		}
	} else if rep.ExitCode(false) == verify.ExitFindings {
		fig.detected++
	} else if rep.ExitCode(false) == verify.ExitUnfinished && crashLike(p, d, img) {
		// The newest sealed segment now reads exactly as one whose writer
		// was killed: zeros from some offset to the end of the file, the
		// footer included. Nothing tells the records once there from
		// space never committed, so crash residue is the right verdict.
		fig.detected++
		fig.asResidue++
		return
	} else {
		t.Fatalf("%v: verify exits %d, want 1; findings %+v", d, rep.ExitCode(false), rep.Findings)
	}
	flagged := map[segment.Position]bool{}
	for _, f := range rep.Findings {
		if !f.Fatal() {
			continue
		}
		if f.Seq != d.seq {
			t.Fatalf("%v: finding in another segment: %+v", d, f)
		}
		for _, fr := range p.frames[d.seq] {
			if f.Bytes > 0 && overlaps(f.Offset, f.Offset+f.Bytes, fr.pos.Offset, fr.pos.Offset+fr.length) ||
				f.Bytes == 0 && f.Offset >= fr.pos.Offset && f.Offset < fr.pos.Offset+fr.length {
				flagged[fr.pos] = true
			}
		}
	}
	for _, sr := range rep.Segments {
		if sr.Seq == d.seq && sr.FileBytes < segment.HeaderSize && sr.Status == verify.Fail {
			// Cut inside its header: nothing says how large the segment
			// was, so the segment as a whole is the finding.
			for pos := range damaged {
				flagged[pos] = true
			}
		}
	}
	fig.flagged += len(flagged)
	if missing, extra := diffSets(damaged, flagged); len(missing)+len(extra) > 0 {
		t.Errorf("%v: verify did not flag damaged records %v; flagged intact records %v\nfindings: %+v", d, missing, extra, rep.Findings)
	}

	// The reader: every record not damaged, intact, and damage reported
	// over each damaged one.
	var reports []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(dm reader.Damage) { reports = append(reports, dm) }})
	if err != nil {
		t.Fatal(err)
	}
	got := map[segment.Position]bool{}
	for r.Next() {
		rec := r.Record()
		if _, err := ParseRecord(rec.Payload); err != nil {
			t.Fatalf("%v: the reader returned a damaged record at %v: %v", d, rec.Position, err)
		}
		got[rec.Position] = true
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%v: reader: %v", d, err)
	}
	r.Close()
	want := map[segment.Position]bool{}
	for seq, frs := range p.frames {
		for _, f := range frs {
			if !damaged[f.pos] && !(unreadable && seq == d.seq) {
				want[f.pos] = true
			}
		}
	}
	if header {
		fig.headerHits++
		if unreadable {
			fig.headerRecords += len(p.frames[d.seq])
		}
		for _, s := range rep.Segments {
			if s.Seq == d.seq && s.Records != uint64(len(p.frames[d.seq])-len(damaged)) {
				t.Fatalf("%v: verify counts %d intact records in the segment, want %d", d, s.Records, len(p.frames[d.seq])-len(damaged))
			}
		}
	}
	if missing, extra := diffSets(want, got); len(missing)+len(extra) > 0 {
		t.Fatalf("%v: the reader missed intact records %v, returned unexpected %v; damage reports %v", d, missing, extra, reports)
	}
	fig.lostR += len(damaged)
	for pos := range damaged {
		covered := false
		for _, dm := range reports {
			covered = covered || dm.Seq == pos.Seq && (dm.Kind == reader.DamageSegment ||
				overlaps(dm.Offset, dm.Offset+max(dm.Len, 1), pos.Offset, pos.Offset+segment.FrameHeaderSize))
		}
		if !covered {
			t.Errorf("%v: the damaged record at %v is in no damage report: %v", d, pos, reports)
			break
		}
	}
}

// diffSets returns what is in want and not in got, and the reverse, sorted.
func diffSets(want, got map[segment.Position]bool) (missing, extra []segment.Position) {
	for p := range want {
		if !got[p] {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if !want[p] {
			extra = append(extra, p)
		}
	}
	less := func(s []segment.Position) { sort.Slice(s, func(i, j int) bool { return s[i].Compare(s[j]) < 0 }) }
	less(missing)
	less(extra)
	return missing, extra
}

// crashLike reports whether the damaged image of the newest sealed segment
// is all zeros from the first changed byte to the end of the file, the
// footer included: what a writer killed before sealing leaves.
func crashLike(p *pristine, d damage, img []byte) bool {
	orig := p.files[d.seq]
	if d.seq != p.sealed[len(p.sealed)-1] || len(img) != len(orig) {
		return false
	}
	i := 0
	for i < len(img) && img[i] == orig[i] {
		i++
	}
	for _, c := range img[i:] {
		if c != 0 {
			return false
		}
	}
	return i < len(img)
}
