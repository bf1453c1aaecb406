package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
)

type cliConfig struct {
	bin, work string
	size      int64 // input bytes
	runs      int
	cold      bool
}

// timing is one side of a CLI comparison: wall seconds and peak RSS of
// each measured run.
type timing struct {
	name string
	secs []float64
	cpu  []float64 // user+system seconds: CPU-bound when close to secs
	rss  []float64
}

func (t *timing) add(r procResult) {
	t.secs = append(t.secs, r.wall.Seconds())
	t.cpu = append(t.cpu, (r.user + r.sys).Seconds())
	t.rss = append(t.rss, float64(r.maxRSS))
}

// cliCase is ours against one peer over the same bytes.
type cliCase struct {
	title, bar  string
	ours, peer  timing
	bytes       int64
	unavailable string // why it did not run
	err         error
	note        string
	sizeOurs    []float64 // compress: output bytes
	sizePeer    []float64
}

// side is one command of a case. run removes what its previous run left,
// then calls ready (which syncs, with nothing of any side left to remove
// or write back), then starts the timed command.
type side func(round int, ready func()) (procResult, error)

// alternate runs the sides in turn for cfg.runs rounds in a balanced
// order (balancedOrder), after one discarded warm-up of each.
func alternate(cfg cliConfig, sides []side, into []*timing) error {
	ready := func() { settle(cfg.cold) }
	for round := -1; round < cfg.runs; round++ {
		for _, k := range balancedOrder(len(sides), round+1) {
			r, err := sides[k](round, ready)
			if err != nil {
				return err
			}
			if round >= 0 {
				into[k].add(r)
			}
		}
	}
	return nil
}

// runWriteCases: `auditseg write DIR < in` against `cat in > file` (the
// bar) and against `cat in | cat > file`. GNU cat 9 copies a regular file
// to a regular file with copy_file_range(2), inside the kernel; reading a
// pipe it must read and write every byte through user space, as auditseg
// does. The last `write` run leaves its log in logDir for the read cases.
//
// The default `write` (--sync interval) fsyncs every segment it seals and
// so waits for the disk; `cat > file` never flushes. The same input is
// also written with --sync none, which like cat leaves the data to the
// kernel's writeback: the like-for-like comparison.
func runWriteCases(cfg cliConfig, input, logDir string) (file, pipe, nosync *cliCase) {
	file = &cliCase{title: "`auditseg write DIR < in` vs `cat in > file`", ours: timing{name: "auditseg write"}, peer: timing{name: "cat > file"}}
	pipe = &cliCase{title: "`auditseg write DIR < in` vs `cat in | cat > file`", peer: timing{name: "cat | cat > file"}}
	nosync = &cliCase{title: "`auditseg write --sync none DIR < in` vs `cat in > file`", ours: timing{name: "auditseg write --sync none"}}
	file.bytes, pipe.bytes, nosync.bytes = fileSize(input), fileSize(input), fileSize(input)
	noSyncDir := logDir + "-nosync"
	out := filepath.Join(cfg.work, "out")
	fresh := func() error {
		os.RemoveAll(out)
		return os.MkdirAll(out, 0o755)
	}
	sides := []side{
		func(_ int, ready func()) (procResult, error) {
			if err := fresh(); err != nil {
				return procResult{}, err
			}
			defer os.RemoveAll(out)
			ready()
			return runProc(procIO{stdin: input, stdout: filepath.Join(out, "cat.out")}, "cat")
		},
		func(_ int, ready func()) (procResult, error) {
			os.RemoveAll(logDir) // the last run's log stays for the read cases
			ready()
			return runProc(procIO{stdin: input}, cfg.bin, "write", "--quiet", logDir)
		},
		func(_ int, ready func()) (procResult, error) {
			if err := fresh(); err != nil {
				return procResult{}, err
			}
			defer os.RemoveAll(out)
			ready()
			return runProc(procIO{}, "sh", "-c", `cat "$1" | cat > "$2"`, "sh", input, filepath.Join(out, "cat.out"))
		},
		func(_ int, ready func()) (procResult, error) {
			os.RemoveAll(noSyncDir)
			defer os.RemoveAll(noSyncDir)
			ready()
			return runProc(procIO{stdin: input}, cfg.bin, "write", "--quiet", "--sync", "none", noSyncDir)
		},
	}
	err := alternate(cfg, sides, []*timing{&file.peer, &file.ours, &pipe.peer, &nosync.ours})
	pipe.ours = file.ours
	pipe.ours.name = "auditseg write (same runs)"
	nosync.peer = file.peer
	nosync.peer.name = "cat > file (same runs)"
	file.err, pipe.err, nosync.err = err, err, err
	return file, pipe, nosync
}

// subsetLog makes a log of hard links to the first segments of logDir
// that hold at least want bytes, plus one more (compress-finished never
// touches the newest segment), so the read and archive cases measure the
// size the issues name rather than all the write case produced.
func subsetLog(logDir, dir string, want int64) (string, error) {
	segs, _, err := segmentFiles(logDir)
	if err != nil {
		return "", err
	}
	var n int64
	k := 0
	for k < len(segs) && n < want {
		n += fileSize(segs[k])
		k++
	}
	if k < len(segs) {
		k++
	}
	os.RemoveAll(dir)
	return dir, linkAll(segs[:k], dir)
}

// runReadCases: `tail -n +1 > /dev/null`, `verify` and `verify --quick`
// of the log against `cat` of its segment files to /dev/null.
func runReadCases(cfg cliConfig, logDir, input string, haveTail, haveVerify string) []*cliCase {
	segs, total, err := segmentFiles(logDir)
	catT := timing{name: "cat segments > /dev/null"}
	tail := &cliCase{title: "`auditseg tail -n +1 DIR > /dev/null` vs `cat segments > /dev/null`", ours: timing{name: "tail -n +1"}, bytes: total, unavailable: haveTail}
	ver := &cliCase{title: "`auditseg verify DIR` vs `cat segments > /dev/null`", ours: timing{name: "verify"}, bytes: total, unavailable: haveVerify}
	quick := &cliCase{title: "`auditseg verify --quick DIR` vs `cat segments > /dev/null`", ours: timing{name: "verify --quick"}, bytes: total, unavailable: haveVerify}
	cases := []*cliCase{tail, ver, quick}
	if err != nil {
		for _, c := range cases {
			c.err = err
		}
		return cases
	}
	sides := []side{
		func(_ int, ready func()) (procResult, error) { ready(); return runProc(procIO{}, "cat", segs...) },
	}
	into := []*timing{&catT}
	if haveTail == "" {
		sides = append(sides, func(round int, ready func()) (procResult, error) {
			ready()
			if round < 0 { // the warm-up run also checks the replay is the input
				return checkReplay(cfg.bin, logDir, input, tail)
			}
			return runProc(procIO{}, cfg.bin, "tail", "-n", "+1", logDir)
		})
		into = append(into, &tail.ours)
	}
	if haveVerify == "" {
		sides = append(sides,
			func(_ int, ready func()) (procResult, error) {
				ready()
				return runProc(procIO{}, cfg.bin, "verify", logDir)
			},
			func(_ int, ready func()) (procResult, error) {
				ready()
				return runProc(procIO{}, cfg.bin, "verify", "--quick", logDir)
			})
		into = append(into, &ver.ours, &quick.ours)
	}
	err = alternate(cfg, sides, into)
	for _, c := range cases {
		c.peer, c.err = catT, err
	}
	return cases
}

// checkReplay runs `tail -n +1` once with its output hashed, and notes on
// the case whether it reproduced the input (a prefix of it, for a log of
// the first segments) byte for byte.
func checkReplay(bin, logDir, input string, c *cliCase) (procResult, error) {
	h := sha256.New()
	cw := &countWriter{w: h}
	r, err := runProc(procIO{out: cw}, bin, "tail", "-n", "+1", logDir)
	if err != nil {
		return r, err
	}
	want, err := hashPrefix(input, cw.n)
	if err != nil {
		return r, err
	}
	switch {
	case string(h.Sum(nil)) == string(want) && cw.n == fileSize(input):
		c.note = fmt.Sprintf("Checked once: the replay is the input byte for byte (%s).", fmtBytes(float64(cw.n)))
	case string(h.Sum(nil)) == string(want) && cw.n > 0:
		c.note = fmt.Sprintf("Checked once: the replay is the first %s of the input byte for byte.", fmtBytes(float64(cw.n)))
	default:
		c.note = fmt.Sprintf("**The replay differs from the input** (%d bytes out, input %d).", cw.n, fileSize(input))
	}
	return r, nil
}

// runCompressCase: `compress-finished` against `zstd -3 -T2` of the same
// segment files, at the default level (level "") or at level. Each run of
// ours gets a fresh directory of hard links to the log's segments
// (compress-finished removes originals; the links share their page
// cache). The peer compresses exactly the files ours archived in its
// warm-up run. The bars judge the default level, what users get; another
// level is a row for information.
func runCompressCase(cfg cliConfig, logDir, have, level string) *cliCase {
	name, args := "compress-finished", []string{"compress-finished", "--jobs", "2"}
	if level != "" {
		name += " --level " + level
		args = append(args, "--level", level)
	}
	c := &cliCase{title: "`auditseg " + strings.Join(args, " ") + " DIR` vs `zstd -3 -T2`", ours: timing{name: name}, peer: timing{name: "zstd -3 -T2"}, unavailable: have}
	if have != "" {
		return c
	}
	if _, err := os.Stat("/usr/bin/zstd"); err != nil {
		c.unavailable = "not available: the zstd CLI is not installed (apt-get install zstd)"
		return c
	}
	segs, _, err := segmentFiles(logDir)
	if err != nil {
		c.err = err
		return c
	}
	var chosen []string
	dir := filepath.Join(cfg.work, "cz")
	outDir := filepath.Join(cfg.work, "zstd-out")
	sides := []side{
		func(round int, ready func()) (procResult, error) {
			os.RemoveAll(dir)
			if err := linkAll(segs, dir); err != nil {
				return procResult{}, err
			}
			ready()
			r, err := runProc(procIO{}, cfg.bin, append(args, dir)...)
			if err != nil {
				return r, err
			}
			zs, n := archives(dir)
			if round < 0 {
				for _, z := range zs {
					chosen = append(chosen, filepath.Join(logDir, strings.TrimSuffix(filepath.Base(z), ".zst")))
				}
				c.bytes = sumSizes(chosen)
			} else {
				c.sizeOurs = append(c.sizeOurs, float64(n))
			}
			return r, nil
		},
		func(round int, ready func()) (procResult, error) {
			if len(chosen) == 0 {
				return procResult{}, errors.New("compress-finished archived no segment in its warm-up run")
			}
			os.RemoveAll(outDir)
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return procResult{}, err
			}
			ready()
			args := append([]string{"-3", "-T2", "-q", "-f", "--output-dir-flat", outDir}, chosen...)
			r, err := runProc(procIO{}, "zstd", args...)
			if err == nil && round >= 0 {
				c.sizePeer = append(c.sizePeer, float64(dirSize(outDir)))
			}
			return r, err
		},
	}
	c.err = alternate(cfg, sides, []*timing{&c.ours, &c.peer})
	c.note = fmt.Sprintf("%d segment files, %s.", len(chosen), fmtBytes(float64(c.bytes)))
	os.RemoveAll(dir)
	os.RemoveAll(outDir)
	return c
}

// segmentFiles lists the log's uncompressed segment files in order.
func segmentFiles(dir string) ([]string, int64, error) {
	l, err := segment.List(dir)
	if err != nil {
		return nil, 0, err
	}
	var paths []string
	for _, e := range l.Segments {
		if !e.Archived {
			paths = append(paths, e.Path)
		}
	}
	if len(paths) == 0 {
		return nil, 0, fmt.Errorf("%s: no segment files", dir)
	}
	return paths, sumSizes(paths), nil
}

func linkAll(paths []string, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Link(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			return err
		}
	}
	return nil
}

func archives(dir string) ([]string, int64) {
	zs, _ := filepath.Glob(filepath.Join(dir, "*"+segment.ArchiveExt))
	return zs, sumSizes(zs)
}

func sumSizes(paths []string) int64 {
	var n int64
	for _, p := range paths {
		n += fileSize(p)
	}
	return n
}

func dirSize(dir string) int64 {
	des, _ := os.ReadDir(dir)
	var n int64
	for _, de := range des {
		n += fileSize(filepath.Join(dir, de.Name()))
	}
	return n
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func hashPrefix(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
