package crashtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
	"github.com/auditseg/auditseg/pkg/writer"
)

// writeLog creates a closed log of n records in dir and returns them.
func writeLog(t *testing.T, dir string, run uint32, n int) []RecordID {
	t.Helper()
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
	if err != nil {
		t.Fatal(err)
	}
	var ids []RecordID
	for i := range n {
		id := RecordID{Run: run, I: uint64(i)}
		if _, err := w.Append(AppendRecord(nil, id)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// readIDs returns the records of dir and the damage the reader reported.
func readIDs(t *testing.T, dir string) ([]RecordID, []reader.Damage) {
	t.Helper()
	var dmg []reader.Damage
	r, err := reader.Open(dir, reader.Options{OnDamage: func(d reader.Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []RecordID
	for r.Next() {
		id, err := ParseRecord(r.Record().Payload)
		if err != nil {
			t.Fatalf("record at %v: %v", r.Record().Position, err)
		}
		ids = append(ids, id)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, dmg
}

// TestPermissions: the writer creates the log directory 0750 and every
// file 0640 (segments, the lock file), and compress-finished its archives
// 0640, whatever the umask allows.
func TestPermissions(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "a", "log")
	writeLog(t, dir, 1, 2000)
	out, err := exec.Command(buildBinary(t, "cmd/auditseg"), "compress-finished", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("compress-finished: %v\n%s", err, out)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o750 {
			t.Errorf("%s: mode %v, want 0750", d, st.Mode().Perm())
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	archives := 0
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", de.Name(), info.Mode().Perm())
		}
		if strings.HasSuffix(de.Name(), segment.ArchiveExt) {
			archives++
		}
	}
	if archives == 0 {
		t.Fatal("compress-finished archived nothing")
	}
}

// TestPlantedSymlinks plants symbolic links where the writer, the reader
// and verify look for files: in place of a sealed segment, of the newest
// segment, of the temporary file of the next segment, and of the lock
// file. Nothing follows them: the files they point to are unchanged,
// their records are never read, and every error names the link.
func TestPlantedSymlinks(t *testing.T) {
	victimDir := t.TempDir()
	// A valid segment full of records the log must never show.
	foreign := filepath.Join(t.TempDir(), "foreign")
	writeLog(t, foreign, 99, 300)
	plant := func(t *testing.T, link string) (victim string, orig []byte) {
		t.Helper()
		victim = filepath.Join(victimDir, filepath.Base(link)+".victim")
		orig, err := os.ReadFile(filepath.Join(foreign, segment.FileName(1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(victim, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(link)
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
		return victim, orig
	}
	unchanged := func(t *testing.T, victim string, orig []byte) {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || !bytes.Equal(b, orig) {
			t.Fatalf("%s, the target of a planted link, was changed (%v)", victim, err)
		}
	}
	noForeign := func(t *testing.T, dir string, want int) {
		t.Helper()
		ids, _ := readIDs(t, dir)
		for _, id := range ids {
			if id.Run == 99 {
				t.Fatalf("the reader followed a link: %v", id)
			}
		}
		if len(ids) != want {
			t.Fatalf("%d records read, want %d", len(ids), want)
		}
	}

	t.Run("sealed segment", func(t *testing.T) {
		dir := t.TempDir()
		n := len(writeLog(t, dir, 1, 1500))
		lost := countRecords(t, filepath.Join(dir, segment.FileName(1)))
		link := filepath.Join(dir, segment.FileName(1))
		victim, orig := plant(t, link)
		noForeign(t, dir, n-lost)
		rep, err := verify.Dir(dir, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !reportsPath(rep, link) {
			t.Errorf("verify does not report the link %s: %+v", link, rep.Findings)
		}
		if _, err := segment.OpenImage(link); err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), link) {
			t.Errorf("opening the link as a segment: %v", err)
		}
		w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
		if err == nil {
			w.Close()
		}
		unchanged(t, victim, orig)
	})
	t.Run("newest segment", func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, 1, 1500)
		l, _ := segment.List(dir)
		last, _ := l.Last()
		victim, orig := plant(t, last.Path)
		// A segment that cannot be read (segment.Entry.NotRegular):
		// passed over, never opened, its number not made again.
		w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
		if err != nil {
			t.Fatalf("Open with a link as the newest segment: %v", err)
		}
		pos, err := w.Append([]byte("after the link"))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil || pos.Seq != last.Seq+1 {
			t.Errorf("appended at %v, %v; want segment %d, after the link", pos, err, last.Seq+1)
		}
		if st, err := os.Lstat(last.Path); err != nil || st.Mode().Type() != os.ModeSymlink {
			t.Errorf("%s is no longer the link planted (%v)", last.Path, err)
		}
		unchanged(t, victim, orig)
	})
	t.Run("next temporary file", func(t *testing.T) {
		dir := t.TempDir()
		n := len(writeLog(t, dir, 1, 1500))
		l, _ := segment.List(dir)
		last, _ := l.Last()
		tmp := filepath.Join(dir, segment.FileName(last.Seq+1)+segment.TempExt)
		victim, orig := plant(t, tmp)
		w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
		if err != nil {
			// The previous writer closed before it had prepared a next
			// segment, so Open must create this one itself and fails.
			if !strings.Contains(err.Error(), tmp) {
				t.Fatalf("Open needing a segment whose temporary name is a link: %v; want an error naming %s", err, tmp)
			}
			unchanged(t, victim, orig)
			return
		}
		// Otherwise it continues in the prepared segment and fails when it
		// needs the next one.
		var appendErr error
		for i := 0; i < 2000 && appendErr == nil; i++ { // until it needs the next segment
			_, appendErr = w.Append(AppendRecord(nil, RecordID{Run: 2, I: uint64(i)}))
		}
		w.Close()
		if appendErr == nil || !strings.Contains(appendErr.Error(), tmp) {
			t.Fatalf("append needing a segment whose temporary name is a link: %v; want an error naming %s", appendErr, tmp)
		}
		unchanged(t, victim, orig)
		ids, _ := readIDs(t, dir)
		if len(ids) < n {
			t.Fatalf("%d records after the failure, had %d", len(ids), n)
		}
	})
	t.Run("lock file", func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, 1, 10)
		victim, orig := plant(t, filepath.Join(dir, segment.LockName))
		if w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment}); err == nil {
			w.Close()
			t.Fatal("Open took a lock through a link")
		}
		if alive, _, err := segment.WriterAlive(dir); alive || err == nil {
			t.Errorf("WriterAlive through a link: alive %v, err %v", alive, err)
		}
		unchanged(t, victim, orig)
	})
}

func countRecords(t *testing.T, path string) int {
	t.Helper()
	im, err := segment.OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	n := 0
	im.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
			n++
		}
		return true
	})
	return n
}

// reportsPath reports whether rep has a finding about p, or says it
// could not be read.
func reportsPath(rep *verify.Report, p string) bool {
	for _, f := range rep.Findings {
		if f.Path == p {
			return true
		}
	}
	for _, s := range rep.Segments {
		if s.Path == p && s.State == verify.StateUnreadable {
			return true
		}
	}
	return false
}

// heapDuring returns the bytes allocated on the heap while fn runs, and
// the growth of the process's peak resident memory (0 when the kernel
// cannot reset the peak).
func heapDuring(fn func()) (heap, peakRSS uint64) {
	runtime.GC()
	var a, b runtime.MemStats
	before := resetPeakRSS()
	runtime.ReadMemStats(&a)
	fn()
	runtime.ReadMemStats(&b)
	if before > 0 {
		peakRSS = max(statusKiB("VmHWM:"), before) - before
	}
	return b.TotalAlloc - a.TotalAlloc, peakRSS << 10
}

// resetPeakRSS resets VmHWM to the current resident size and returns it
// in KiB, or 0 if it cannot.
func resetPeakRSS() uint64 {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0
	}
	return statusKiB("VmHWM:")
}

func statusKiB(field string) uint64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			var n uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &n)
			return n
		}
	}
	return 0
}

// TestHugeLengths: files whose length fields claim gigabytes — a segment
// header claiming a 1 GiB segment in a 64 KiB file, frames whose lengths
// are the extremes of int32, an archive whose zstd header claims 1 GiB
// from a few bytes — make the reader, verify and the writer's recovery
// allocate nothing in proportion: each run allocates under 8 MiB of heap
// and grows the process's peak resident memory by under 64 MiB.
func TestHugeLengths(t *testing.T) {
	const limit, rssLimit = 8 << 20, 64 << 20
	dir := t.TempDir()
	ids := writeLog(t, dir, 1, 100)
	_ = ids
	// Segment 2: a header claiming 1 GiB, with a frame in it.
	big := segment.NewImage(2, testSegment, 1)
	segment.PutFrame(big, 2, segment.HeaderSize, segment.TypeData, 1, AppendRecord(nil, RecordID{Run: 2}))
	segment.Header{Seq: 2, Size: segment.MaxSegmentSize, Created: 1}.Encode(big)
	// Segment 3: frames whose length words are extreme.
	ext := segment.NewImage(3, testSegment, 1)
	off := int64(segment.HeaderSize)
	for _, l := range []int32{0x7fffffff, -0x7fffffff, -1 << 31, 0x7ffffff8, -0x7ffffff8, 1 << 30} {
		segment.StoreLength(ext, off, l)
		binary.LittleEndian.PutUint32(ext[off+12:], uint32(l))
		ext[off+8] = segment.TypeData
		off += 64
	}
	// Segment 4: an archive whose frame header claims 1 GiB.
	zst := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa4, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00}
	for name, b := range map[string][]byte{segment.FileName(2): big, segment.FileName(3): ext, segment.ArchiveName(4): zst} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var readErr error
	start := time.Now()
	if n, rss := heapDuring(func() {
		r, err := reader.Open(dir, reader.Options{OnDamage: func(reader.Damage) {}})
		if err != nil {
			readErr = err
			return
		}
		for r.Next() {
		}
		readErr = r.Err()
		r.Close()
	}); n > limit || rss > rssLimit || readErr != nil {
		t.Errorf("reader: %d bytes allocated, peak resident memory +%d MiB, error %v", n, rss>>20, readErr)
	}
	t.Logf("reader: %v", time.Since(start))
	start = time.Now()
	var rep *verify.Report
	if n, rss := heapDuring(func() { rep, readErr = verify.Dir(dir, verify.Options{}) }); n > limit || rss > rssLimit || readErr != nil {
		t.Errorf("verify: %d bytes allocated, peak resident memory +%d MiB, error %v", n, rss>>20, readErr)
	}
	t.Logf("verify: %v", time.Since(start))
	for _, seq := range []uint64{2, 3, 4} {
		found := false
		for _, f := range rep.Findings {
			found = found || f.Seq == seq && f.Fatal()
		}
		if !found {
			t.Errorf("verify reports nothing fatal about hostile segment %d: %+v", seq, rep.Findings)
		}
	}
	// The writer refuses a log whose newest sealed segment (the archive)
	// cannot be read, since it cannot chain the next digest to it; it
	// must say which file, and allocate nothing large either way.
	var w *writer.Writer
	if n, rss := heapDuring(func() { w, readErr = writer.Open(dir, writer.Options{SegmentSize: testSegment}) }); n > limit || rss > rssLimit {
		t.Errorf("writer.Open (recovery): %d bytes allocated, peak resident memory +%d MiB", n, rss>>20)
	}
	if w != nil {
		if st := w.Recovered(); st.DamagedSegments == 0 {
			t.Errorf("recovery did not report the hostile segments as damaged: %+v", st)
		}
		w.Close()
	} else if !strings.Contains(readErr.Error(), segment.ArchiveName(4)) {
		t.Errorf("writer.Open: %v; want an error naming the archive", readErr)
	}
}

// TestForeignFiles: a log directory also holding files that are not part
// of the log — other names, a directory and a FIFO named like segments, an
// empty file named like one, a backup copy — still opens, appends, reads
// and verifies. Nothing blocks on the FIFO, foreign names are reported as
// unexpected (not fatal), the directory and the FIFO as segments that
// cannot be read (segment.Entry.NotRegular), and the empty "segment" as
// damaged.
func TestForeignFiles(t *testing.T) {
	dir := t.TempDir()
	first := writeLog(t, dir, 1, 800)
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("notes"), 0o640)
	b, _ := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	os.WriteFile(filepath.Join(dir, segment.FileName(1)+".bak"), b, 0o640)
	os.WriteFile(filepath.Join(dir, "1.seg"), b, 0o640)
	l, _ := segment.List(dir)
	last, _ := l.Last()
	odd := []string{filepath.Join(dir, segment.FileName(last.Seq+1)), filepath.Join(dir, segment.FileName(last.Seq+2))}
	os.Mkdir(odd[0], 0o750)
	if err := syscall.Mkfifo(odd[1], 0o640); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, segment.FileName(last.Seq+3))
	os.WriteFile(empty, nil, 0o640)

	w, err := writer.Open(dir, writer.Options{SegmentSize: testSegment})
	if err != nil {
		t.Fatalf("Open among foreign files: %v", err)
	}
	if st := w.Recovered(); st.DamagedSegments != 3 {
		t.Errorf("recovery: %+v, want the directory, the FIFO and the empty segment reported as damaged", st)
	}
	for i := range 50 {
		if _, err := w.Append(AppendRecord(nil, RecordID{Run: 2, I: uint64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ids, dmg := readIDs(t, dir)
	if len(ids) != len(first)+50 {
		t.Fatalf("%d records read, want %d", len(ids), len(first)+50)
	}
	if len(dmg) != 3 || dmg[0].Path != odd[0] || dmg[1].Path != odd[1] || dmg[2].Path != empty {
		t.Errorf("reader damage %v, want one report about each of %s and %s", dmg, odd, empty)
	}
	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	unexpected := 0
	for _, f := range rep.Findings {
		switch {
		case f.Class == verify.Unexpected:
			unexpected++
		case f.Path == empty:
		default:
			t.Errorf("verify finding about a foreign file or an intact segment: %+v", f)
		}
	}
	if unexpected != 3 {
		t.Errorf("%d unexpected files reported, want 3: %+v", unexpected, rep.Findings)
	}
	for _, s := range rep.Segments {
		if (s.Path == odd[0] || s.Path == odd[1]) != (s.State == verify.StateUnreadable) {
			t.Errorf("verify: %s %s; want the directory and the FIFO unreadable, nothing else", s.Path, s.State)
		}
	}
}

// TestHugeLengthsCLI: `auditseg write --framing u32be` given a length
// prefix of almost 4 GiB refuses the record without reserving memory for
// it, and `auditseg tail` and `auditseg verify` on a segment claiming
// 1 GiB stay small: each process peaks under 100 MiB resident.
func TestHugeLengthsCLI(t *testing.T) {
	bin := buildBinary(t, "cmd/auditseg")
	const maxRSS = 100 << 10 // KiB, as getrusage reports it
	run := func(stdin []byte, args ...string) (int, string, int64) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stderr.String(), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	}
	dir := filepath.Join(t.TempDir(), "log")
	in := []byte{0xff, 0xff, 0xff, 0xf0, 'x', 'y'}
	code, stderr, rss := run(in, "write", "--framing", "u32be", "--segment-size", "64KiB", dir)
	if code != 1 || rss > maxRSS || !strings.Contains(stderr, "input offset 0") {
		t.Errorf("write of a record claiming 4 GiB: exit %d, %d KiB resident, stderr %q", code, rss, stderr)
	}
	big := segment.NewImage(1, testSegment, 1)
	segment.PutFrame(big, 1, segment.HeaderSize, segment.TypeData, 1, []byte("hello"))
	segment.Header{Seq: 1, Size: segment.MaxSegmentSize, Created: 1}.Encode(big)
	hostile := filepath.Join(t.TempDir(), "log")
	os.Mkdir(hostile, 0o750)
	if err := os.WriteFile(filepath.Join(hostile, segment.FileName(1)), big, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"tail", "-n", "+1", hostile}, {"verify", hostile}} {
		code, stderr, rss := run(nil, args...)
		if code == 0 || rss > maxRSS || !strings.Contains(stderr, segment.FileName(1)) {
			t.Errorf("%v on a 64 KiB segment claiming 1 GiB: exit %d, %d KiB resident, stderr %q", args, code, rss, stderr)
		}
	}
}
