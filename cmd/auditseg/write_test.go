package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// execute runs the auditseg command tree in-process.
func execute(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out bytes.Buffer
	stderr, code = executeTo(t, &out, stdin, args...)
	return out.String(), stderr, code
}

// executeTo is execute with stdout going to out.
func executeTo(t *testing.T, out io.Writer, stdin []byte, args ...string) (stderr string, code int) {
	t.Helper()
	root := newRoot()
	var errb bytes.Buffer
	root.SetArgs(args)
	root.SetIn(bytes.NewReader(stdin))
	root.SetOut(out)
	root.SetErr(&errb)
	err := root.Execute()
	code = exitOK
	if err != nil {
		code = exitCode(err)
		errb.WriteString(err.Error())
	}
	return errb.String(), code
}

// payloads decodes every DATA record of the log in position order with
// the shared walker.
func payloads(t *testing.T, dir string) [][]byte {
	t.Helper()
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, e := range l.Segments {
		im, err := segment.OpenImage(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		im.Walk(segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
			switch ev.Kind {
			case segment.EvFrame:
				if ev.Frame.Type == segment.TypeData {
					out = append(out, bytes.Clone(ev.Frame.Payload))
				}
			case segment.EvEnd, segment.EvTail:
			default:
				t.Errorf("%s: %v at offset %d", e.Path, ev.Kind, ev.Offset)
			}
			return true
		})
		im.Close()
	}
	return out
}

func testRecords(n int) [][]byte {
	var recs [][]byte
	for i := range n {
		r := bytes.Repeat([]byte{byte('a' + i%26)}, (i*37)%700)
		if i%50 == 0 {
			r = nil // empty records are records
		}
		recs = append(recs, r)
	}
	return recs
}

func TestWriteRoundTrip(t *testing.T) {
	recs := testRecords(3000) // ~1 MiB: many 64 KiB segments and several read blocks
	join := func(sep byte, trailing bool) []byte {
		var b bytes.Buffer
		for i, r := range recs {
			b.Write(r)
			if i < len(recs)-1 || trailing {
				b.WriteByte(sep)
			}
		}
		return b.Bytes()
	}
	var framed bytes.Buffer
	for _, r := range recs {
		binary.Write(&framed, binary.BigEndian, uint32(len(r)))
		framed.Write(r)
	}
	cases := []struct {
		name  string
		input []byte
		args  []string
	}{
		{"newline", join('\n', true), nil},
		{"newline-no-final-newline", join('\n', false), nil},
		{"nul", join(0, true), []string{"--delim", "nul"}},
		{"u32be", framed.Bytes(), []string{"--framing", "u32be"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			args := append([]string{"write", "--segment-size", "64KiB", "--quiet", dir}, c.args...)
			_, stderr, code := execute(t, c.input, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := payloads(t, dir)
			if len(got) != len(recs) {
				t.Fatalf("%d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				if !bytes.Equal(got[i], recs[i]) {
					t.Fatalf("record %d: got %d bytes, want %d", i, len(got[i]), len(recs[i]))
				}
			}
			if l, _ := segment.List(dir); len(l.Segments) < 10 {
				t.Fatalf("only %d segments", len(l.Segments))
			}
		})
	}
}

func TestWriteEdgeInputs(t *testing.T) {
	for _, c := range []struct {
		name, input string
		want        []string
	}{
		{"empty input", "", nil},
		{"one empty line", "\n", []string{""}},
		{"empty lines", "\n\nx\n\n", []string{"", "", "x", ""}},
		{"no newline", "abc", []string{"abc"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, stderr, code := execute(t, []byte(c.input), "write", "-q", "--segment-size", "64KiB", dir); code != 0 {
				t.Fatal(stderr)
			}
			got := payloads(t, dir)
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if string(got[i]) != c.want[i] {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name  string
		input string
		args  []string
		code  int
		msg   string
	}{
		{"bad size", "", []string{"--segment-size", "12xyz"}, exitUsage, "segment-size"},
		// Sizes out of range name the flag and the range, not "open DIR:
		// segment size 4096 out of range [65536, 1073741824]".
		{"size too small", "", []string{"--segment-size", "4KiB"}, exitUsage, "--segment-size 4KiB: want 64KiB to 1GiB, a multiple of 8"},
		{"size too large", "", []string{"--segment-size", "2GiB"}, exitUsage, "--segment-size 2GiB: want 64KiB to 1GiB, a multiple of 8"},
		{"size unaligned", "", []string{"--segment-size", "65540"}, exitUsage, "--segment-size 65540: want 64KiB to 1GiB, a multiple of 8"},
		{"size zero", "", []string{"--segment-size", "0"}, exitUsage, "--segment-size 0: want 64KiB to 1GiB, a multiple of 8"},
		{"max record too large", "", []string{"--max-record", "64KiB"}, exitUsage, "--max-record 64KiB: want 1 to 65296 bytes for --segment-size 64KiB (a larger --segment-size allows more)"},
		{"max record zero", "", []string{"--max-record", "0"}, exitUsage, "--max-record 0: want 1 to 65296 bytes"},
		{"bad sync", "", []string{"--sync", "sometimes"}, exitUsage, "sync"},
		// A few microseconds apart, flushes of an idle log kept a core busy.
		{"sync interval too short", "", []string{"--sync-interval", "1us"}, exitUsage, "--sync-interval 1µs: want at least 1ms"},
		{"sync interval zero", "", []string{"--sync-interval", "0"}, exitUsage, "--sync-interval 0s: want at least 1ms"},
		{"bad delim", "", []string{"--delim", "tab"}, exitUsage, "delim"},
		// A record over the limit reads the same whichever layer finds it
		// (the writer, a length prefix, a line longer than a block), and
		// says how to raise the limit; the wordings used to differ.
		{"record too large", strings.Repeat("x", 10000) + "\n", []string{"--max-record", "1000"}, exitFailure, "input offset 0: record too large: 10000 bytes, the limit is 1000 bytes (raise it with --max-record / Options.MaxRecordSize, up to 65296 for 65536-byte segments, further with a larger --segment-size / Options.SegmentSize)"},
		{"truncated frame", "\x00\x00\x00\x09abc", []string{"--framing", "u32be"}, exitFailure, "truncated record"},
		// A huge prefix is refused as soon as it is read, with the limit.
		{"prefix too large", "\x7f\xff\xff\xffabc", []string{"--framing", "u32be", "--max-record", "1000"}, exitFailure, "input offset 0: length prefix: record too large: 2147483647 bytes, the limit is 1000 bytes (no segment holds a record of more than 1073741584 bytes)"},
		{"line longer than a block", strings.Repeat("y", 2<<20), []string{"--max-record", "1000"}, exitFailure, "input offset 0: record too large: over the limit of 1000 bytes (raise it with --max-record / Options.MaxRecordSize, up to 65296"},
		{"record over the segment's most", strings.Repeat("z", 70000) + "\n", []string{"--max-record", "65296"}, exitFailure, "record too large: 70000 bytes, the limit is 65296 bytes (the most a 65536-byte segment holds: raise --segment-size / Options.SegmentSize, and --max-record with it)"},
		{"delim and framing", "", []string{"--framing", "u32be", "--delim", "nul"}, exitUsage, "give one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"write", "-q", "--segment-size", "64KiB", filepath.Join(dir, c.name)}, c.args...)
			_, stderr, code := execute(t, []byte(c.input), args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, c.code, stderr, c.msg)
			}
			if _, err := os.Stat(filepath.Join(dir, c.name)); c.code == exitUsage && err == nil {
				t.Fatalf("a usage error created %s", filepath.Join(dir, c.name))
			}
		})
	}
}

// TestWriteSignal: SIGTERM stops reading, commits what was read, seals and
// exits 0, while stdin is still open.
func TestWriteSignal(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "write", "--segment-size", "64KiB", dir)
	stdin, _ := cmd.StdinPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdin.Write([]byte("one\ntwo\n"))
	deadline := time.Now().Add(10 * time.Second)
	for len(payloadsQuiet(dir)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	stdin.Close()
	if got := payloads(t, dir); len(got) != 2 || string(got[1]) != "two" {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(stderr.String(), "2 records") {
		t.Fatalf("summary: %q", stderr.String())
	}
}

// payloadsQuiet counts records of a live log without failing on frames in
// flight.
func payloadsQuiet(dir string) [][]byte {
	l, _ := segment.List(dir)
	var out [][]byte
	for _, e := range l.Segments {
		im, err := segment.OpenImage(e.Path)
		if err != nil {
			continue
		}
		im.Walk(segment.HeaderSize, segment.Live, func(ev segment.Event) bool {
			if ev.Kind == segment.EvFrame && ev.Frame.Type == segment.TypeData {
				out = append(out, bytes.Clone(ev.Frame.Payload))
			}
			return true
		})
		im.Close()
	}
	return out
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "auditseg")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestVersionAndCompletion: `auditseg --version` names the build (the Go
// release at least) and `auditseg completion bash` prints a script.
func TestVersionAndCompletion(t *testing.T) {
	out, stderr, code := execute(t, nil, "--version")
	if code != exitOK || !strings.HasPrefix(out, "auditseg version ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("--version: exit %d, %q, %q", code, out, stderr)
	}
	out, stderr, code = execute(t, nil, "completion", "bash")
	if code != exitOK || !strings.Contains(out, "complete -o default -F __start_auditseg auditseg") {
		t.Fatalf("completion bash: exit %d, %d bytes, %q", code, len(out), stderr)
	}
}

// TestWriteReportsRecoveryDamage: a segment recovery leaves as it is (a
// damaged committed frame in a dead writer's segment) is said on stderr
// when write opens the log, not only by a later verify. --quiet still
// says it: it is an error of the log.
func TestWriteReportsRecoveryDamage(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		dir := t.TempDir()
		const size = 64 << 10
		img := segment.NewImage(1, size, time.Now().UnixNano())
		off := int64(segment.HeaderSize)
		for i := range 3 {
			off = segment.PutFrame(img, 1, off, segment.TypeData, time.Now().UnixNano(), fmt.Appendf(nil, "record %d", i))
		}
		img[segment.HeaderSize+segment.FrameHeaderSize+2] ^= 0xff // the first record's payload
		p := filepath.Join(dir, segment.FileName(1))
		if err := os.WriteFile(p, img, 0o640); err != nil {
			t.Fatal(err)
		}
		args := []string{"write", "--segment-size", "64KiB", dir}
		if quiet {
			args = append(args, "-q")
		}
		_, stderr, code := execute(t, []byte("new\n"), args...)
		if code != exitOK || !strings.Contains(stderr, "auditseg write: level=ERROR") ||
			!strings.Contains(stderr, p) || !strings.Contains(stderr, "run auditseg verify") {
			t.Errorf("quiet %v: exit %d, stderr %q: want exit 0 and the damaged segment named", quiet, code, stderr)
		}
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, img) {
			t.Errorf("the damaged segment was changed (%v)", err)
		}
	}
}
