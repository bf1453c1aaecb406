package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// compressLog writes records through `auditseg write` into a new log of
// 64 KiB segments and returns its directory and the records.
func compressLog(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	var in bytes.Buffer
	var recs [][]byte
	for i := range n {
		r := []byte(`{"user":"u` + strings.Repeat("x", i%40) + `","action":"read","n":` + string(rune('0'+i%10)) + `}`)
		recs = append(recs, r)
		in.Write(r)
		in.WriteByte('\n')
	}
	if _, stderr, code := execute(t, in.Bytes(), "write", "-q", "--segment-size", "64KiB", dir); code != exitOK {
		t.Fatalf("write: exit %d: %s", code, stderr)
	}
	return dir, recs
}

func listing(t *testing.T, dir string) segment.Listing {
	t.Helper()
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCompressFinishedRoundTrip(t *testing.T) {
	dir, recs := compressLog(t, 20000)
	before := listing(t, dir)
	if len(before.Segments) < 4 {
		t.Fatalf("only %d segments", len(before.Segments))
	}
	stdout, stderr, code := execute(t, nil, "compress-finished", "-j", "2", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	re := regexp.MustCompile(`^compress-finished: (\d+) segments?, (\d+) -> (\d+) bytes \(.* -> .*\), ratio [0-9.]+, elapsed \S+\n$`)
	m := re.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("summary %q", stdout)
	}
	after := listing(t, dir)
	archived := 0
	for _, e := range after.Segments {
		if e.Archived {
			archived++
		}
		if e.Duplicate != "" {
			t.Errorf("duplicate %s", e.Duplicate)
		}
	}
	if m[1] != strconv.Itoa(archived) || archived < len(before.Segments)-2 {
		t.Errorf("summary says %s segments; %d of %d archived", m[1], archived, len(after.Segments))
	}
	last, _ := after.Last()
	if last.Archived {
		t.Error("the newest segment was archived")
	}
	got := payloads(t, dir)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	// Again: nothing to do, exit 0, and said so with what the dry run
	// counts. It said "0 segments, 0 -> 0 bytes (0 B -> 0 B), ratio 0.00"
	// of a log all archived (found by a hostile-user review).
	stdout, _, code = execute(t, nil, "compress-finished", dir)
	want := fmt.Sprintf("compress-finished: nothing to compress: %d segments already archived, 1 skipped (--dry-run says why)\n", archived)
	if code != exitOK || stdout != want {
		t.Errorf("second run: exit %d, %q; want %q", code, stdout, want)
	}
}

func TestCompressFinishedJSON(t *testing.T) {
	dir, _ := compressLog(t, 8000)
	// A leftover of an interrupted run is cleaned up and reported.
	tmp := filepath.Join(dir, segment.ArchiveName(1)) + segment.TempExt
	if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := execute(t, nil, "compress-finished", "--output", "json", "--level", "19", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, "_base64") {
		t.Errorf("a *_base64 field for names that are valid UTF-8 (only for others): %s", stdout)
	}
	var j struct {
		Dir          string   `json:"dir"`
		Segments     int      `json:"segments"`
		Failed       int      `json:"failed"`
		BytesIn      int64    `json:"bytes_in"`
		BytesOut     int64    `json:"bytes_out"`
		Ratio        float64  `json:"ratio"`
		Elapsed      *float64 `json:"elapsed_seconds"`
		TempsRemoved []string `json:"temps_removed"`
		Results      []struct {
			Seq             uint64 `json:"seq"`
			Archive         string `json:"archive"`
			Outcome         string `json:"outcome"`
			BytesOut        int64  `json:"bytes_out"`
			OriginalRemoved bool   `json:"original_removed"`
		} `json:"results"`
		Skipped []struct {
			Reason string `json:"reason"`
		} `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if j.Dir != dir || j.Segments == 0 || j.Failed != 0 || j.Segments != len(j.Results) || j.Elapsed == nil ||
		j.BytesIn != int64(j.Segments)*64<<10 || j.Ratio != float64(j.BytesIn)/float64(j.BytesOut) {
		t.Errorf("summary %+v", j)
	}
	if len(j.TempsRemoved) != 1 || j.TempsRemoved[0] != tmp {
		t.Errorf("temps removed %v", j.TempsRemoved)
	}
	var sum int64
	for _, r := range j.Results {
		st, err := os.Stat(r.Archive)
		if err != nil || st.Size() != r.BytesOut || r.Outcome != "compressed" || !r.OriginalRemoved {
			t.Errorf("result %+v: %v", r, err)
		}
		sum += r.BytesOut
	}
	if sum != j.BytesOut {
		t.Errorf("bytes_out %d, sum of archives %d", j.BytesOut, sum)
	}
	if len(j.Skipped) == 0 || !strings.Contains(j.Skipped[len(j.Skipped)-1].Reason, "newest") {
		t.Errorf("skipped %+v", j.Skipped)
	}
}

func TestCompressFinishedDryRun(t *testing.T) {
	dir, _ := compressLog(t, 8000)
	before := listing(t, dir)
	stdout, stderr, code := execute(t, nil, "compress-finished", "--dry-run", "--keep", "2", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	after := listing(t, dir)
	if len(after.Segments) != len(before.Segments) {
		t.Fatal("dry run changed the directory")
	}
	for _, e := range after.Segments {
		if e.Archived {
			t.Fatal("dry run archived a segment")
		}
	}
	checkDryRun(t, stdout, before)
	// `write` leaves an empty segment after the last sealed one when the
	// next segment was created before its input ended; without it the
	// newest segment is sealed. Check the other case too.
	if newest := before.Segments[len(before.Segments)-1]; !sealedFile(newest.Path) {
		if err := os.Remove(newest.Path); err != nil {
			t.Fatal(err)
		}
		before = listing(t, dir)
		stdout, stderr, code = execute(t, nil, "compress-finished", "--dry-run", "--keep", "2", dir)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkDryRun(t, stdout, before)
	}
}

func sealedFile(path string) bool {
	_, err := segment.ReadFooter(path)
	return err == nil
}

// checkDryRun checks the plan of `--dry-run --keep 2` of the log listed in
// before: the newest segment is never compressed, and counts as one of
// the two kept when it is sealed.
func checkDryRun(t *testing.T, stdout string, before segment.Listing) {
	t.Helper()
	n := len(before.Segments)
	want := n - 3
	if sealedFile(before.Segments[n-1].Path) {
		want = n - 2
	}
	if c := strings.Count(stdout, "would compress "); c != want {
		t.Errorf("%d segments, %d would be compressed, want %d:\n%s", n, c, want, stdout)
	}
	if !strings.Contains(stdout, "(--keep)") || !strings.Contains(stdout, "\ndry run: ") {
		t.Errorf("output:\n%s", stdout)
	}
}

// --min-age reaches the planner: every segment of a log just written is
// too young for an hour, none for a nanosecond.
func TestCompressFinishedMinAge(t *testing.T) {
	dir, _ := compressLog(t, 6000)
	stdout, stderr, code := execute(t, nil, "compress-finished", "--dry-run", "--min-age", "1h", dir)
	if code != exitOK || strings.Contains(stdout, "would compress ") || !strings.Contains(stdout, "less than --min-age 1h") {
		t.Fatalf("--min-age 1h: exit %d, %q, %q", code, stdout, stderr)
	}
	stdout, stderr, code = execute(t, nil, "compress-finished", "--dry-run", "--min-age", "1ns", dir)
	if code != exitOK || !strings.Contains(stdout, "would compress ") || strings.Contains(stdout, "--min-age") {
		t.Fatalf("--min-age 1ns: exit %d, %q, %q", code, stdout, stderr)
	}
}

func TestCompressFinishedKeepOriginal(t *testing.T) {
	dir, _ := compressLog(t, 6000)
	if _, stderr, code := execute(t, nil, "compress-finished", "--keep-original", dir); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dups := 0
	for _, e := range listing(t, dir).Segments {
		if e.Duplicate != "" {
			dups++
			want, _ := os.ReadFile(e.Path)
			b, _ := os.ReadFile(e.Duplicate)
			dec, _ := zstd.NewReader(nil)
			got, err := dec.DecodeAll(b, nil)
			dec.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %v", e.Duplicate, err)
			}
		}
	}
	if dups == 0 {
		t.Error("no archive beside its original")
	}
}

// One segment fails: exit 1, the file named on stderr, its original kept,
// the others archived.
func TestCompressFinishedFailureExitCode(t *testing.T) {
	dir, _ := compressLog(t, 8000)
	blocker := filepath.Join(dir, segment.ArchiveName(2)) + segment.TempExt
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := execute(t, nil, "compress-finished", dir)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d: %s", code, exitFailure, stderr)
	}
	if !strings.Contains(stderr, blocker) || !strings.Contains(stderr, "1 of ") || !strings.Contains(stdout, "1 FAILED") {
		t.Errorf("stdout %q\nstderr %q", stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, segment.FileName(2))); err != nil {
		t.Error("the failed segment's original is gone")
	}
	if _, err := os.Stat(filepath.Join(dir, segment.ArchiveName(1))); err != nil {
		t.Error("segment 1 was not archived")
	}
}

func TestCompressFinishedUsage(t *testing.T) {
	dir, _ := compressLog(t, 100)
	for _, args := range [][]string{
		{"compress-finished"},
		{"compress-finished", dir, dir},
		{"compress-finished", "--level", "0", dir},
		{"compress-finished", "--level", "fast", dir},
		{"compress-finished", "-j", "-1", dir},
		{"compress-finished", "--keep", "-1", dir},
		{"compress-finished", "--min-age", "-1h", dir},
		{"compress-finished", "--output", "yaml", dir},
		{"compress-finished", "--bogus", dir},
		{"compress-finished", filepath.Join(dir, "missing")},
	} {
		if _, stderr, code := execute(t, nil, args...); code != exitUsage || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	stdout, _, code := execute(t, nil, "compress-finished", "-o", "json", filepath.Join(dir, "missing"))
	if code != exitUsage || !strings.Contains(stdout, `"error": "open log directory `) {
		t.Errorf("missing directory, -o json: exit %d, %q", code, stdout)
	}
	// 0 is one per CPU, as for verify.
	if _, stderr, code := execute(t, nil, "compress-finished", "-j", "0", "--dry-run", dir); code != exitOK {
		t.Errorf("-j 0: exit %d, %s", code, stderr)
	}
	// A huge --jobs is no more slots than segments (it ran the process
	// out of memory: a channel of a billion slots).
	if _, stderr, code := execute(t, nil, "compress-finished", "-j", "1000000000", dir); code != exitOK {
		t.Errorf("-j 1000000000: exit %d, %s", code, stderr)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]zstd.EncoderLevel{
		"1": zstd.SpeedFastest, "3": zstd.SpeedDefault, "7": zstd.SpeedBetterCompression,
		"19": zstd.SpeedBestCompression, "fastest": zstd.SpeedFastest, "default": zstd.SpeedDefault,
		"Better": zstd.SpeedBetterCompression, "best": zstd.SpeedBestCompression,
	} {
		if got, err := parseLevel(in); err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "23", "-3", "max"} {
		if _, err := parseLevel(in); err == nil {
			t.Errorf("parseLevel(%q) accepted", in)
		}
	}
}

// Another run holding the directory: exit 1, nothing touched.
func TestCompressFinishedBusy(t *testing.T) {
	dir, _ := compressLog(t, 3000)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := execute(t, nil, "compress-finished", dir)
	if code != exitFailure || !strings.Contains(stderr, "another compress-finished run") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// With -o json the refusal is JSON on stdout too, for scripts; and a
	// run that never started was not interrupted.
	stdout, _, code := execute(t, nil, "compress-finished", "-o", "json", dir)
	var j struct {
		Dir, Error  string
		Interrupted bool
	}
	if err := json.Unmarshal([]byte(stdout), &j); err != nil || code != exitFailure ||
		j.Dir != dir || !strings.Contains(j.Error, "another compress-finished run") || j.Interrupted {
		t.Errorf("-o json: exit %d, %v, %q", code, err, stdout)
	}
	for _, e := range listing(t, dir).Segments {
		if e.Archived {
			t.Fatal("archived while another run held the directory")
		}
	}
}

// TestCompressFinishedWarnsDamaged: a sealed segment whose footer is
// damaged is left alone, and a real run says so on stderr (it was said by
// --dry-run only); the exit code stays 0 (verify is the judge).
func TestCompressFinishedWarnsDamaged(t *testing.T) {
	dir, _ := compressLog(t, 8000)
	p := filepath.Join(dir, segment.FileName(1))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-20] ^= 0xff // in the footer
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	// And segment 3's header. Each line names its file once, with the
	// offset: the warning said "skipped PATH: damaged (run auditseg
	// verify): PATH: offset 0: bad magic ..." (found by a hostile-user
	// review), the dry run's "skip PATH: ..." alike.
	h := filepath.Join(dir, segment.FileName(3))
	if err := flipByte(h, 0); err != nil {
		t.Fatal(err)
	}
	dry, _, _ := execute(t, nil, "compress-finished", "--dry-run", dir)
	_, stderr, code := execute(t, nil, "compress-finished", dir)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, c := range []struct{ out, path, want string }{
		{stderr, p, "auditseg compress-finished: warning: skipped " + p + ": footer damaged (run auditseg verify): "},
		{stderr, h, "auditseg compress-finished: warning: skipped " + h + ": damaged (run auditseg verify): offset 0: bad magic "},
		{dry, p, "skip " + p + ": footer damaged (run auditseg verify): "},
		{dry, h, "skip " + h + ": damaged (run auditseg verify): offset 0: bad magic "},
	} {
		var line string
		for _, l := range strings.Split(c.out, "\n") {
			if strings.Contains(l, c.path) {
				line = l
				break
			}
		}
		if !strings.HasPrefix(line, c.want) || strings.Count(line, c.path) != 1 {
			t.Errorf("line %q; want it to start %q and name %s once", line, c.want, c.path)
		}
	}
	for _, damaged := range []string{p, h} {
		if _, err := os.Stat(damaged); err != nil {
			t.Fatalf("the damaged segment %s is gone", damaged)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, segment.ArchiveName(2))); err != nil {
		t.Error("segment 2 was not archived")
	}
}

// TestCompressUnreadableSegmentFails: a sealed segment the run cannot read
// (no permission) is a failure, exit 1, named on stderr, not a warning
// with exit 0: a cron job must notice. The others are still archived, the
// unreadable one is left as it is. As root, whom file modes do not stop,
// the binary runs as nobody on a log nobody owns but that one segment.
func TestCompressUnreadableSegmentFails(t *testing.T) {
	dir, _ := compressLog(t, 8000)
	l := listing(t, dir)
	if len(l.Segments) < 4 {
		t.Fatalf("only %d segments", len(l.Segments))
	}
	bad := l.Segments[1].Path
	bin := buildBinary(t)
	cmd := exec.Command(bin, "compress-finished", "-o", "json", dir)
	if os.Geteuid() == 0 {
		const nobody = 65534
		letThrough(t, filepath.Dir(bin))
		letThrough(t, dir)
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range append(des, nil) {
			p := dir
			if de != nil {
				p = filepath.Join(dir, de.Name())
			}
			if p != bad {
				if err := os.Chown(p, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	if err := os.Chmod(bad, 0); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit: %v (want %d)\nstdout %s\nstderr %s", err, exitFailure, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), bad) || !strings.Contains(stderr.String(), "permission denied") {
		t.Errorf("stderr does not name %s and the error: %s", bad, stderr.String())
	}
	var j struct {
		Segments, Failed int
		Interrupted      bool
		Results          []struct {
			Original, Outcome string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if j.Failed != 1 || j.Interrupted || j.Segments != len(l.Segments)-2 {
		t.Errorf("summary %+v; want 1 failed, %d archived, not interrupted", j, len(l.Segments)-2)
	}
	if _, err := os.Lstat(bad); err != nil {
		t.Errorf("the unreadable segment: %v", err)
	}
	if _, err := os.Lstat(segment.ArchiveOf(bad)); err == nil {
		t.Error("the unreadable segment has an archive")
	}
}

// letThrough lets others search the directories from os.TempDir() down to
// dir (the test's own, made 0700), so that another user can reach dir.
func letThrough(t *testing.T, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	if st, err := os.Stat(top); err != nil || st.Mode().Perm()&0o001 == 0 {
		t.Skipf("%s cannot be searched by other users: this test needs to run the binary as nobody", top)
	}
	for p := dir; p != top && p != "/" && strings.HasPrefix(p, top); p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, st.Mode().Perm()|0o005); err != nil {
			t.Fatal(err)
		}
	}
}
