package archive_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

// A power cut during compress-finished, simulated from the calls a run
// makes through its FS (crashtest.FaultFS). SIGKILL keeps the page cache
// and every directory entry made (TestKillPoints); a power cut keeps only
// what was flushed. The model, the usual one for file systems without
// ordering guarantees:
//
//   - a file's data is durable once an fsync of it returns (its content
//     when the fsync began); before that, the file may hold nothing, a
//     part of what was written, or all of it;
//   - a directory entry change (create, rename, remove) is durable once a
//     directory fsync that began after it returns; before that, each name
//     it touched may independently hold its durable value or any value it
//     took since (a rename may survive as its new name only, its old name
//     only, both or neither);
//   - the log as it was before the run is durable, except a leftover
//     archive the interrupted run did not write (zstd by hand, a copy),
//     whose data and name may never have been flushed.
//
// For every prefix of the recorded calls, every such image is built (the
// distinct ones), the next run is made on it, and then every record of
// every sealed segment must read back exactly once, in order, and verify
// report what it reports of the log archived without a cut. An image
// that lost a segment's original and its archive both fails that.
//
// What a file was written with is taken from its fsync, or its rename if
// it had none: the writes themselves need not be watched, as nothing is
// written to a file after its fsync.
//
// It fails if the temporary archive's fsync, the directory fsync after
// the rename, or the fsync of a leftover archive or of the directory
// before a leftover archive's original goes is left out (each was
// tried). The run is recorded once, with one CPU slot (two segments in
// flight): the interleavings of other runs are not explored.
func TestPowerCutDuringCompressFinished(t *testing.T) {
	var figs []string
	for _, temp := range []bool{true, false} {
		fx := newFixture(t, 5, segSize)
		// Leftovers of an interrupted run, so that the cleanup at the
		// start is cut too: 1 beside an archive that verifies, neither its
		// data nor its name flushed (whatever put it there); 2 beside one
		// that does not verify; and, in the first case, a torn temporary
		// archive of 3, whose removal's directory fsync makes 1's archive
		// durable before resolving it does.
		writeFile(t, fx.zst(1), compressed(t, fx.files[1]))
		bad := compressed(t, fx.files[2])
		bad[len(bad)/3] ^= 0x08
		writeFile(t, fx.zst(2), bad)
		if temp {
			good := compressed(t, fx.files[3])
			writeFile(t, fx.zst(3)+segment.TempExt, good[:len(good)-7])
		}
		calls, images := powerCutRun(t, fx, map[string]bool{filepath.Base(fx.zst(1)): true})
		figs = append(figs, fmt.Sprintf("temp_leftover=%v: calls=%d images=%d", temp, calls, images))
	}
	t.Logf("SUMMARY TestPowerCutDuringCompressFinished: %s (none lost a record)", strings.Join(figs, "; "))
}

// powerCutRun records a run on fx, whose files named in unflushed were
// never flushed, then checks every image a power cut during it may leave.
// It returns how many calls were recorded and images checked.
func powerCutRun(t *testing.T, fx *fixture, unflushed map[string]bool) (int, int) {
	t.Helper()
	initial := readDir(t, fx.dir)
	rec := &pcRecorder{pending: map[pcKey]pcEvent{}}
	fs := &crashtest.FaultFS{Before: rec.before, After: rec.after}
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, FS: fs})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatal(err)
	}
	if rec.err != nil {
		t.Fatal(rec.err)
	}
	fx.checkFinal(t)
	want := findings(t, fx.dir)

	m := newPCModel(t, initial, unflushed, rec.events)
	seen := map[[32]byte]bool{}
	for k := 0; k <= len(rec.events); k++ {
		last := "the start"
		if k > 0 {
			last = rec.events[k-1].String()
		}
		for _, img := range m.images(t, k) {
			key := img.key()
			if seen[key] {
				continue
			}
			seen[key] = true
			what := fmt.Sprintf("power cut after %d of %d calls (the last %s), leaving %s", k, len(rec.events), last, img)
			checkPowerCutImage(t, fx, img, what, want)
		}
	}
	if len(seen) < len(rec.events) {
		t.Fatalf("%d distinct images from %d calls: the recording is missing calls", len(seen), len(rec.events))
	}
	return len(rec.events), len(seen)
}

// pcEvent is one call the run made through its FS that succeeded.
type pcEvent struct {
	op       crashtest.Op
	name, to string // base names in the log directory; to: OpRename's new name
	data     []byte // OpFsync: the file when the fsync began; OpRename: the file renamed
	covers   int    // OpSyncDir: the calls before it began, whose entry changes it made durable
}

func (e pcEvent) String() string {
	if e.op == crashtest.OpRename {
		return fmt.Sprintf("rename %s %s", e.name, e.to)
	}
	return e.op.String() + " " + e.name
}

type pcKey struct {
	op crashtest.Op
	n  int
}

// pcRecorder records the calls of a run: what a call did counts once it
// has returned; what a flush covers is what was there when it began.
type pcRecorder struct {
	mu      sync.Mutex
	events  []pcEvent
	pending map[pcKey]pcEvent
	err     error
}

func (r *pcRecorder) before(c crashtest.Call) {
	ev := pcEvent{op: c.Op, name: filepath.Base(c.Path), to: filepath.Base(c.To)}
	var err error
	switch c.Op {
	case crashtest.OpCreate, crashtest.OpRemove:
	case crashtest.OpFsync, crashtest.OpRename:
		ev.data, err = os.ReadFile(c.Path)
	case crashtest.OpSyncDir:
		ev.name = ""
	default:
		err = fmt.Errorf("a call the model does not know: %v %s", c.Op, c.Path)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && r.err == nil {
		r.err = err
	}
	ev.covers = len(r.events)
	r.pending[pcKey{c.Op, c.N}] = ev
}

func (r *pcRecorder) after(c crashtest.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := pcKey{c.Op, c.N}
	if ev, ok := r.pending[k]; ok && c.Err == nil {
		r.events = append(r.events, ev)
	}
	delete(r.pending, k)
}

// pcEntry is a directory entry change: name holds inode ino (0: nothing)
// from call idx on (before the run: -2 made durable, -1 not).
type pcEntry struct {
	idx  int
	name string
	ino  int
}

// pcModel replays recorded calls over the directory as it was before the
// run. Inodes are numbered 1, 2, ... in order of appearance, the same in
// every replay.
type pcModel struct {
	initial    []pcEntry
	flushed    map[int][]byte // inode → data durable before the run
	content    map[int][]byte // inode → the last data seen of it (what was written)
	events     []pcEvent
	initialIno int
}

func newPCModel(t *testing.T, initial map[string][]byte, unflushed map[string]bool, events []pcEvent) *pcModel {
	m := &pcModel{flushed: map[int][]byte{}, content: map[int][]byte{}, events: events}
	names := slices.Sorted(maps.Keys(initial))
	for i, n := range names {
		ino := i + 1
		m.content[ino] = initial[n]
		if unflushed[n] {
			m.initial = append(m.initial, pcEntry{-1, n, ino})
			continue
		}
		m.initial = append(m.initial, pcEntry{-2, n, ino})
		m.flushed[ino] = initial[n]
	}
	m.initialIno = len(names)
	// The whole run, for the content each new file ends up with.
	st := m.replay(t, len(events))
	for ino, d := range st.seen {
		m.content[ino] = d
	}
	return m
}

// pcState is the directory after a prefix of the calls.
type pcState struct {
	log        []pcEntry      // every entry change, the initial entries first
	durableIdx int            // entry changes of calls before it are durable
	flushed    map[int][]byte // inode → its durable data
	seen       map[int][]byte // inode → its data at its last fsync or rename
}

func (m *pcModel) replay(t *testing.T, k int) *pcState {
	t.Helper()
	st := &pcState{log: slices.Clone(m.initial), durableIdx: -1, flushed: map[int][]byte{}, seen: map[int][]byte{}}
	for ino, d := range m.flushed {
		st.flushed[ino] = d
	}
	cur := map[string]int{}
	for _, e := range m.initial {
		cur[e.name] = e.ino
	}
	next := m.initialIno + 1
	set := func(i int, name string, ino int) {
		cur[name] = ino
		st.log = append(st.log, pcEntry{i, name, ino})
	}
	for i, ev := range m.events[:k] {
		ino := cur[ev.name]
		switch ev.op {
		case crashtest.OpCreate:
			set(i, ev.name, next)
			next++
		case crashtest.OpFsync:
			if ino == 0 {
				t.Fatalf("call %d: fsync of %s, which the model has no file for", i, ev.name)
			}
			st.flushed[ino], st.seen[ino] = ev.data, ev.data
		case crashtest.OpRename:
			if ino == 0 {
				t.Fatalf("call %d: rename of %s, which the model has no file for", i, ev.name)
			}
			st.seen[ino] = ev.data
			set(i, ev.name, 0)
			set(i, ev.to, ino)
		case crashtest.OpRemove:
			set(i, ev.name, 0)
		case crashtest.OpSyncDir:
			st.durableIdx = max(st.durableIdx, ev.covers)
		}
	}
	return st
}

// pcImage is a directory a power cut may leave: base name → content.
type pcImage map[string][]byte

func (img pcImage) key() [32]byte {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(img)) {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(img[n]))
		h.Write(img[n])
	}
	return [32]byte(h.Sum(nil))
}

func (img pcImage) String() string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(img)) {
		parts = append(parts, fmt.Sprintf("%s (%d bytes)", n, len(img[n])))
	}
	return strings.Join(parts, ", ")
}

// images returns every directory a power cut after the first k calls may
// leave (with repeats).
func (m *pcModel) images(t *testing.T, k int) []pcImage {
	st := m.replay(t, k)
	// Each name's choices: its durable value, then every value it took
	// since the changes stopped being durable.
	choices := map[string][]int{}
	for _, e := range st.log {
		switch {
		case e.idx < st.durableIdx:
			choices[e.name] = []int{e.ino}
		case !slices.Contains(choices[e.name], e.ino):
			if _, ok := choices[e.name]; !ok {
				choices[e.name] = []int{0} // absent before its first change
			}
			choices[e.name] = append(choices[e.name], e.ino)
		}
	}
	names := slices.Sorted(maps.Keys(choices))
	var out []pcImage
	for _, entries := range product(names, choices) {
		// Each inode named whose data was never flushed may hold nothing,
		// a part of it, or all of it.
		var inos []int
		for _, ino := range entries {
			if _, ok := st.flushed[ino]; !ok && ino != 0 && !slices.Contains(inos, ino) {
				inos = append(inos, ino)
			}
		}
		sort.Ints(inos)
		data := map[int][][]byte{}
		for _, ino := range inos {
			d := m.content[ino]
			data[ino] = [][]byte{{}, d[:len(d)/2], d}
		}
		for _, pick := range productData(inos, data) {
			img := pcImage{}
			for n, ino := range entries {
				switch d, ok := st.flushed[ino]; {
				case ino == 0:
				case ok:
					img[n] = d
				default:
					img[n] = pick[ino]
				}
			}
			out = append(out, img)
		}
	}
	return out
}

// product is every assignment of one of its choices to each name.
func product(names []string, choices map[string][]int) []map[string]int {
	out := []map[string]int{{}}
	for _, n := range names {
		var next []map[string]int
		for _, a := range out {
			for _, ino := range choices[n] {
				b := map[string]int{n: ino}
				for k, v := range a {
					b[k] = v
				}
				next = append(next, b)
			}
		}
		out = next
	}
	return out
}

// productData is every assignment of one of its possible contents to each
// inode.
func productData(inos []int, data map[int][][]byte) []map[int][]byte {
	out := []map[int][]byte{{}}
	for _, ino := range inos {
		var next []map[int][]byte
		for _, a := range out {
			for _, d := range data[ino] {
				b := map[int][]byte{ino: d}
				for k, v := range a {
					b[k] = v
				}
				next = append(next, b)
			}
		}
		out = next
	}
	return out
}

// readDir returns the content of every file in dir, by base name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = b
	}
	return out
}

// findings is what verify reports of dir, one line per finding, without
// the path (an image is checked in another directory).
func findings(t *testing.T, dir string) []string {
	t.Helper()
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range rep.Findings {
		out = append(out, fmt.Sprintf("%s seq %d offset %d", f.Class, f.Seq, f.Offset))
	}
	return out
}

// checkPowerCutImage writes img into a new directory, makes the next run
// on it and checks that nothing of the log was lost.
func checkPowerCutImage(t *testing.T, fx *fixture, img pcImage, what string, want []string) {
	t.Helper()
	dir := t.TempDir()
	for n, b := range img {
		writeFile(t, filepath.Join(dir, n), b)
	}
	res, err := archive.Run(context.Background(), dir, archive.Options{Jobs: 1})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: the next run: %v", what, err)
	}
	var damage []string
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { damage = append(damage, d.Error()) }})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var got []string
	for r.Next() {
		got = append(got, string(r.Record().Payload))
	}
	err = r.Err()
	r.Close()
	if err != nil || len(damage) > 0 {
		t.Fatalf("%s: after the next run the reader says %v, damage %q", what, err, damage)
	}
	if !slices.Equal(got, fx.records) {
		t.Fatalf("%s: after the next run %d records read, want %d, each once, in order (every sealed segment's)", what, len(got), len(fx.records))
	}
	if f := findings(t, dir); !slices.Equal(f, want) {
		t.Fatalf("%s: after the next run verify finds %q, want %q", what, f, want)
	}
	os.RemoveAll(dir) // thousands of images: one at a time on the disk
}
