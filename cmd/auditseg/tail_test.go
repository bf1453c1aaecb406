package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/auditseg/auditseg/pkg/reader"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestTailRoundTrip: input -> write -> tail -n +1 is byte-identical for
// each framing, across many 64 KiB segment rotations.
func TestTailRoundTrip(t *testing.T) {
	recs := testRecords(3000)
	bin := append(testRecords(3000), []byte("line\nbreak"), []byte{0, 0xff, 0xfe, '\n', 0}, nil)
	cases := []struct {
		name  string
		recs  [][]byte
		flags []string
		enc   func([]byte) []byte
	}{
		{"newline", recs, nil, func(r []byte) []byte { return append(r, '\n') }},
		{"nul", recs, []string{"--delim", "nul"}, func(r []byte) []byte { return append(r, 0) }},
		{"u32be", bin, []string{"--framing", "u32be"}, func(r []byte) []byte {
			return append(binary.BigEndian.AppendUint32(nil, uint32(len(r))), r...)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []byte
			for _, r := range c.recs {
				in = append(in, c.enc(bytes.Clone(r))...)
			}
			dir := t.TempDir()
			args := append([]string{"write", "-q", "--segment-size", "64KiB"}, c.flags...)
			if _, stderr, code := execute(t, in, append(args, dir)...); code != exitOK {
				t.Fatalf("write: exit %d: %s", code, stderr)
			}
			if l, _ := segment.List(dir); len(l.Segments) < 10 {
				t.Fatalf("only %d segments", len(l.Segments))
			}
			out, stderr, code := execute(t, nil, append(append([]string{"tail", "-n", "+1"}, c.flags...), dir)...)
			if code != exitOK || stderr != "" {
				t.Fatalf("tail: exit %d: %s", code, stderr)
			}
			if !bytes.Equal([]byte(out), in) {
				t.Fatalf("tail output (%d bytes) differs from the input (%d bytes)", len(out), len(in))
			}
		})
	}
}

// timedLog writes n records "rec-I" stamped start+I seconds into sealed
// 64 KiB segments (the last left unsealed) and returns their positions.
func timedLog(t *testing.T, dir string, n int, start time.Time) []segment.Position {
	t.Helper()
	const size = segment.MinSegmentSize
	var pos []segment.Position
	var prev [segment.DigestSize]byte
	seq := uint64(1)
	img := segment.NewImage(seq, size, start.UnixNano())
	off := int64(segment.HeaderSize)
	flush := func(seal bool) {
		if seal {
			segment.PutEnd(img, seq, off, start.UnixNano())
			f, err := segment.Seal(img, prev, 0, start.UnixNano())
			if err != nil {
				t.Fatal(err)
			}
			prev = f.Digest
		}
		if err := os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		p := fmt.Appendf(nil, "rec-%d", i)
		if off+segment.FrameSize(len(p)) > segment.DataLimit(size) {
			flush(true)
			seq++
			img, off = segment.NewImage(seq, size, start.UnixNano()), segment.HeaderSize
		}
		pos = append(pos, segment.Position{Seq: seq, Offset: off})
		off = segment.PutFrame(img, seq, off, segment.TypeData, start.Add(time.Duration(i)*time.Second).UnixNano(), p)
	}
	flush(false)
	return pos
}

func recLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "rec-%d\n", i)
	}
	return b.String()
}

func TestTailStartOptions(t *testing.T) {
	dir := t.TempDir()
	const n = 7000
	start := time.Now().Add(-n * time.Second)
	pos := timedLog(t, dir, n, start)
	if pos[n-1].Seq < 4 {
		t.Fatalf("only %d segments", pos[n-1].Seq)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, recLines(n-10, n)},
		{[]string{"-n", "3"}, recLines(n-3, n)},
		{[]string{"-n", "-3"}, recLines(n-3, n)}, // tail(1)'s -N
		{[]string{"--lines=-3"}, recLines(n-3, n)},
		{[]string{"-n", "0"}, ""},
		{[]string{"-n", "2500"}, recLines(n-2500, n)},
		{[]string{"-n", "99999"}, recLines(0, n)},
		{[]string{"-n", "+6990"}, recLines(6989, n)},
		{[]string{"-n", "+0"}, recLines(0, n)},
		{[]string{"--from", pos[1234].String()}, recLines(1234, n)},
		{[]string{"--from", fmt.Sprintf("%d:%d", pos[1234].Seq, pos[1234].Offset+1)}, recLines(1235, n)},
		{[]string{"--since", start.Add(6000 * time.Second).UTC().Format(time.RFC3339Nano)}, recLines(6000, n)},
		{[]string{"--since", start.Add(6000*time.Second + 1).Format(time.RFC3339Nano)}, recLines(6001, n)},
		// RFC 3339's lowercase z and a space for the T.
		{[]string{"--since", strings.NewReplacer("T", " ", "Z", "z").Replace(start.Add(6000 * time.Second).UTC().Format(time.RFC3339Nano))}, recLines(6000, n)},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, stderr, code := execute(t, nil, append(append([]string{"tail"}, c.args...), dir)...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if out != c.want {
				t.Fatalf("got %d bytes starting %.40q, want %d bytes starting %.40q", len(out), out, len(c.want), c.want)
			}
		})
	}
	// A duration counts back from now: the records of the last ~100 s.
	out, _, code := execute(t, nil, "tail", "--since", "100s", dir)
	if lines := strings.Count(out, "\n"); code != exitOK || lines < 95 || lines > 100 || !strings.HasSuffix(out, recLines(n-1, n)) {
		t.Fatalf("--since 100s: exit %d, %d lines", code, lines)
	}
}

func TestTailJSON(t *testing.T) {
	dir := t.TempDir()
	w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte("plain"), []byte("quote\" back\\ nl\n tab\t ctl\x01 \u2028 é"), {0xff, 0x00, 'x'}, {}}
	var pos []segment.Position
	for _, p := range payloads {
		at, err := w.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		pos = append(pos, at)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := execute(t, nil, "tail", "-o", "json", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(payloads) {
		t.Fatalf("%d lines: %q", len(lines), out)
	}
	for i, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if obj["position"] != pos[i].String() || obj["segment"] != float64(pos[i].Seq) || obj["offset"] != float64(pos[i].Offset) {
			t.Fatalf("line %d: %v, want position %v", i, obj, pos[i])
		}
		ts, err := time.Parse(time.RFC3339Nano, obj["time"].(string))
		if err != nil || time.Since(ts) > time.Minute || !strings.HasSuffix(obj["time"].(string), "Z") || len(obj["time"].(string)) != len("2006-01-02T15:04:05.000000000Z") {
			t.Fatalf("line %d: time %v", i, obj["time"])
		}
		var got []byte
		if s, ok := obj["payload"].(string); ok {
			got = []byte(s)
			if _, both := obj["payload_base64"]; both {
				t.Fatalf("line %d has both payload fields", i)
			}
		} else if got, err = base64.StdEncoding.DecodeString(obj["payload_base64"].(string)); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(got, payloads[i]) {
			t.Fatalf("line %d payload %q, want %q", i, got, payloads[i])
		}
	}
	if !strings.Contains(lines[2], `"payload_base64"`) || !strings.Contains(lines[1], `\u2028`) {
		t.Fatalf("encoding choices: %s", out)
	}
}

func TestTailDamageExitCodes(t *testing.T) {
	dir := t.TempDir()
	pos := timedLog(t, dir, 3000, time.Unix(1_700_000_000, 0))
	// Corrupt rec-100's payload.
	p := filepath.Join(dir, segment.FileName(pos[100].Seq))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), pos[100].Offset+segment.FrameHeaderSize)
	f.Close()
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", dir)
	want := recLines(0, 100) + recLines(101, 3000)
	if code != exitFailure || out != want {
		t.Fatalf("exit %d, %d bytes of output (want %d)", code, len(out), len(want))
	}
	if !strings.Contains(stderr, fmt.Sprintf("%s: offset %d: frame checksum mismatch", p, pos[100].Offset)) || !strings.Contains(stderr, "auditseg verify") {
		t.Fatalf("stderr %q does not name the file and offset", stderr)
	}

	// A dead writer's reserved frame: a warning, exit 0.
	dir2 := t.TempDir()
	img := segment.NewImage(1, segment.MinSegmentSize, 0)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, 1, []byte("one"))
	segment.StoreLength(img, off, -40)
	segment.PutFrame(img, 1, off+40, segment.TypeData, 2, []byte("two"))
	os.WriteFile(filepath.Join(dir2, segment.FileName(1)), img, 0o640)
	out, stderr, code = execute(t, nil, "tail", dir2)
	if code != exitOK || out != "one\ntwo\n" || !strings.Contains(stderr, "warning:") || !strings.Contains(stderr, fmt.Sprintf("offset %d: frame reserved", off)) {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// A segment that cannot be opened is an I/O error (exit 2), not damage
// (exit 1). The tests run as root, which opens any file, so the
// classification is checked on the reports the reader makes.
func TestTailUnreadableSegmentIsAnIOError(t *testing.T) {
	open := &os.PathError{Op: "open", Path: "/log/00000000000000000002.seg", Err: syscall.EACCES}
	cases := []struct {
		d    reader.Damage
		want bool
	}{
		{reader.Damage{Kind: reader.DamageSegment, Err: segment.FileError(open.Path, "cannot open segment", open)}, true},
		{reader.Damage{Kind: reader.DamageSegment, Err: fmt.Errorf("file changed while it was read: %w", errors.New("fault"))}, true},
		{reader.Damage{Kind: reader.DamageSegment, Err: &segment.CorruptError{Path: open.Path, Offset: 8, Reason: "bad version"}}, false},
		{reader.Damage{Kind: reader.DamageTorn, Err: &segment.CorruptError{Path: open.Path, Offset: 64, Reason: "frame checksum mismatch"}}, false},
		{reader.Damage{Kind: reader.DamageMissing}, false},
	}
	for _, c := range cases {
		if got := unreadableSegment(c.d); got != c.want {
			t.Errorf("unreadableSegment(%v) = %v, want %v", &c.d, got, c.want)
		}
	}
}

func TestTailUsageErrors(t *testing.T) {
	dir := t.TempDir()
	timedLog(t, dir, 10, time.Unix(1_700_000_000, 0))
	bad := filepath.Join(t.TempDir(), "cursor")
	os.WriteFile(bad, []byte("garbage\n"), 0o640)
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"-n", "x"}, "-n"},
		{[]string{"-n", "-+3"}, "-n"},
		{[]string{"-n", "--3"}, "-n"},
		{[]string{"--since", "yesterday"}, "--since"},
		{[]string{"--since", "-5m"}, "--since"},
		{[]string{"--from", "12"}, "--from"},
		{[]string{"--from", ":64"}, "not a number"},
		{[]string{"--from", ""}, "SEQ:OFFSET"},
		{[]string{"--since", ""}, "--since"},
		{[]string{"-n", "3", "--from", "1:64"}, "give one"},
		{[]string{"--since", "1h", "--from", "1:64"}, "give one"},
		{[]string{"-o", "xml"}, "raw or json"},
		{[]string{"-o", "json", "--delim", "nul"}, "raw only"},
		{[]string{"--delim", "tab"}, "newline or nul"},
		{[]string{"--framing", "u16"}, "u32be"},
		{[]string{"--framing", "u32be", "--delim", "nul"}, "give one"},
		{[]string{"--cursor-file", bad}, bad},
		{[]string{"--bogus"}, "unknown flag"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, stderr, code := execute(t, nil, append(append([]string{"tail"}, c.args...), dir)...)
			if code != exitUsage || out != "" || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, out %q, stderr %q (want %q)", code, out, stderr, c.msg)
			}
		})
	}
	_, stderr, code := execute(t, nil, "tail", filepath.Join(dir, "missing"))
	if code != exitUsage || !strings.Contains(stderr, "missing") {
		t.Fatalf("missing directory: exit %d, %q", code, stderr)
	}
}

// TestTailCursorResume: runs with a cursor file print every record exactly
// once between them, across rotations and an empty run.
func TestTailCursorResume(t *testing.T) {
	dir := t.TempDir()
	cursor := filepath.Join(t.TempDir(), "tail.cursor")
	var all, printed strings.Builder
	n := 0
	appendRecs := func(k int) {
		w, err := writer.Open(dir, writer.Options{SegmentSize: segment.MinSegmentSize})
		if err != nil {
			t.Fatal(err)
		}
		for range k {
			p := fmt.Sprintf("record %d %s", n, strings.Repeat("x", n%300))
			if _, err := w.Append([]byte(p)); err != nil {
				t.Fatal(err)
			}
			all.WriteString(p + "\n")
			n++
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) {
		out, stderr, code := execute(t, nil, append(append([]string{"tail", "--cursor-file", cursor}, args...), dir)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		printed.WriteString(out)
	}
	appendRecs(100)
	run("-n", "+1")
	b, err := os.ReadFile(cursor)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCursor(string(b))
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("cursor file %q: %v", b, err)
	}
	if h, err := segment.ReadHeader(filepath.Join(dir, segment.FileName(c.pos.Seq))); err != nil || h.Created != c.created {
		t.Fatalf("cursor file %q: segment created %d (%v)", b, h.Created, err)
	}
	run() // nothing new: the cursor stays
	appendRecs(1000)
	run("-n", "2") // the cursor wins over -n
	appendRecs(1)
	run()
	appendRecs(3000)
	run()
	if printed.String() != all.String() {
		t.Fatalf("printed %d bytes over the runs, want %d", printed.Len(), all.Len())
	}
	if l, _ := segment.List(dir); len(l.Segments) < 10 {
		t.Fatalf("only %d segments", len(l.Segments))
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(cursor), "*.tmp")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// TestTailWarnsOfEmptyDirectory: tail of a directory without segment
// files prints nothing and exits 0, as for an empty log, and says on
// stderr that the directory holds no segment files; a log with records
// gets no such warning.
func TestTailWarnsOfEmptyDirectory(t *testing.T) {
	empty := t.TempDir()
	out, errOut, code := execute(t, nil, "tail", "-n", "+1", empty)
	if code != 0 || out != "" || !strings.Contains(errOut, empty+" holds no segment files") {
		t.Errorf("empty directory: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	dir := filepath.Join(t.TempDir(), "log")
	if _, errOut, code := execute(t, []byte("a\nb\n"), "write", "-q", dir); code != 0 {
		t.Fatalf("write: exit %d: %s", code, errOut)
	}
	out, errOut, code = execute(t, nil, "tail", dir)
	if code != 0 || out != "a\nb\n" || errOut != "" {
		t.Errorf("a log: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestTailSegmentFile: tail reads one segment file, or its archive, given
// as the path.
func TestTailSegmentFile(t *testing.T) {
	dir := t.TempDir()
	pos := timedLog(t, dir, 3000, time.Unix(1_700_000_000, 0))
	seg2 := filepath.Join(dir, segment.FileName(2))
	first, last := -1, -1
	for i, p := range pos {
		if p.Seq == 2 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", seg2)
	if code != exitOK || out != recLines(first, last+1) {
		t.Fatalf("exit %d (%s), %d bytes", code, stderr, len(out))
	}
	z := filepath.Join(t.TempDir(), segment.ArchiveName(2))
	if b, err := exec.Command("zstd", "-q", "-o", z, seg2).CombinedOutput(); err != nil {
		t.Skipf("zstd CLI unavailable (%v: %s); archive path not tested", err, b)
	}
	out, stderr, code = execute(t, nil, "tail", "-n", "2", z)
	if code != exitOK || out != recLines(last-1, last+1) {
		t.Fatalf("archive: exit %d (%s), %q", code, stderr, out)
	}
}

// TestTailDamagedArchive: an archive that does not decompress is damage of
// the log (exit 1, as verify says), not an I/O error (exit 2), and the
// records of the other segments are still printed, with those of its own
// that still decode: cut in half, this one's whole segment decodes before
// the cut (its frame's checksum is what is lost), and each record's CRC
// vouches for it.
func TestTailDamagedArchive(t *testing.T) {
	dir := t.TempDir()
	for _, in := range []string{"a\nb\n", "c\n"} {
		if _, stderr, code := execute(t, []byte(in), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
			t.Fatal(stderr)
		}
	}
	if _, stderr, code := execute(t, nil, "compress-finished", dir); code != 0 {
		t.Fatal(stderr)
	}
	p := filepath.Join(dir, segment.ArchiveName(1))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b[:len(b)/2], 0o640); err != nil { // cut in half
		t.Fatal(err)
	}
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", dir)
	if code != exitFailure || out != "a\nb\nc\n" || !strings.Contains(stderr, p) {
		t.Fatalf("exit %d (want %d), out %q, stderr %q", code, exitFailure, out, stderr)
	}
}

// TestTailReportsDuplicateOnce: a segment kept beside its archive is read
// from the original, each record once, with one warning naming the archive.
func TestTailReportsDuplicateOnce(t *testing.T) {
	dir := t.TempDir()
	for _, in := range []string{"a\nb\n", "c\n"} {
		if _, stderr, code := execute(t, []byte(in), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
			t.Fatal(stderr)
		}
	}
	if _, stderr, code := execute(t, nil, "compress-finished", "--keep-original", dir); code != 0 {
		t.Fatal(stderr)
	}
	a := filepath.Join(dir, segment.ArchiveName(1))
	out, stderr, code := execute(t, nil, "tail", "-n", "+1", dir)
	if code != 0 || out != "a\nb\nc\n" || strings.Count(stderr, a) != 1 {
		t.Fatalf("exit %d, out %q, stderr %q (want %s named once)", code, out, stderr, a)
	}
	// Many: one line, not one each.
	for _, in := range []string{"d\n", "e\n"} {
		if _, stderr, code := execute(t, []byte(in), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
			t.Fatal(stderr)
		}
	}
	if _, stderr, code := execute(t, nil, "compress-finished", "--keep-original", dir); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code = execute(t, nil, "tail", "-n", "+1", dir)
	if code != 0 || out != "a\nb\nc\nd\ne\n" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, " segments have an archive beside the original (") {
		t.Fatalf("exit %d, out %q, stderr %q (want one line for the duplicates)", code, out, stderr)
	}
}

// TestTailFromPastTheEnd: a --from past the last record prints nothing and
// exits 0, as it should, but says where the last record is: a mistyped
// position looks the same.
func TestTailFromPastTheEnd(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
		t.Fatal(stderr)
	}
	out, stderr, code := execute(t, nil, "tail", "--from", "99:0", dir)
	if code != 0 || out != "" || !strings.Contains(stderr, "no record at or after 99:0; the last record is at 1:") {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	if out, stderr, _ := execute(t, nil, "tail", "--from", "1:0", dir); out != "a\nb\n" || stderr != "" {
		t.Fatalf("out %q, stderr %q", out, stderr)
	}
	// The same for one segment file given instead of the directory. (An
	// offset past the segment's record area is refused instead:
	// TestTailFromOutsideRecordArea.)
	file := filepath.Join(dir, segment.FileName(1))
	out, stderr, code = execute(t, nil, "tail", "--from", "1:60000", file)
	if code != 0 || out != "" || !strings.Contains(stderr, "no record at or after 1:60000; the last record is at 1:") {
		t.Fatalf("segment file: exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// TestTailSinceInTheFuture: a --since in the future prints nothing, as a
// quiet log does, and says so (found by a hostile-user review: a year
// mistyped, 2062 for 2026, gave an empty answer and exit 0 without a
// word); one in the past that matches nothing gets no warning.
func TestTailSinceInTheFuture(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
		t.Fatal(stderr)
	}
	future := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	out, stderr, code := execute(t, nil, "tail", "--since", future, dir)
	if code != 0 || out != "" || !strings.Contains(stderr, "--since "+future+" is in the future") || !strings.Contains(stderr, "the last record is at 1:") {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	if out, stderr, code := execute(t, nil, "tail", "--since", "0s", dir); code != 0 || out != "" || stderr != "" {
		t.Fatalf("--since 0s: exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// TestTailCursorStillChecksFlags: a cursor file that holds a position
// takes over from -n/--from/--since, but bad values of those are still
// refused (they were accepted until the cursor was lost).
func TestTailCursorStillChecksFlags(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
		t.Fatal(stderr)
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	if out, stderr, code := execute(t, nil, "tail", "-n", "+1", "--cursor-file", cur, dir); code != 0 || out != "a\nb\n" {
		t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"-n", "3", "--from", "1:64"}} {
		a := append(append([]string{"tail", "--cursor-file", cur}, args...), dir)
		if _, stderr, code := execute(t, nil, a...); code != exitUsage {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestTailFollowEndsWhenReaderGone: `tail -f DIR | head -1` on an idle log
// ends once head has gone (it waited for the next record, maybe forever),
// by SIGPIPE as when a record is written, without storing the cursor.
func TestTailFollowEndsWhenReaderGone(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	if _, stderr, code := execute(t, []byte("a\nb\n"), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
		t.Fatal(stderr)
	}
	cur := filepath.Join(t.TempDir(), "cursor")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "tail", "-f", "-n", "+1", "--cursor-file", cur, dir)
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "a\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	pr.Close() // the reader goes, as head -1 does
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE {
			t.Fatalf("exit: %v, want death by SIGPIPE", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tail -f still running 10 s after its reader went")
	}
	if _, err := os.Stat(cur); !os.IsNotExist(err) {
		t.Fatalf("cursor stored (%v) although the reader may not have read what was printed", err)
	}
}
