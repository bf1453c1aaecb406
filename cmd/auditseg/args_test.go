package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A wrong number of arguments names the subcommand and what it wants.
// Cobra's "accepts 1 arg(s), received 2" named neither.
func TestArgumentCountNamesTheCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "a", "b"}, "auditseg tail: want one log directory or segment file, got 2 arguments"},
		{[]string{"tail"}, "auditseg tail: want one log directory or segment file, got none"},
		{[]string{"write", "a", "b", "c"}, "auditseg write: want one log directory, got 3 arguments"},
		{[]string{"inspect"}, "auditseg inspect: want one segment file or archive, got none"},
		{[]string{"compress-finished", "a", "b"}, "auditseg compress-finished: want one log directory, got 2 arguments"},
		{[]string{"verify"}, "auditseg verify: want at least one log directory or segment file, got none"},
		// An empty argument, as an unset "$LOGDIR" gives, is named as
		// such, before anything is created or opened (found by a
		// hostile-user review: "mkdir : no such file or directory").
		{[]string{"write", ""}, "auditseg write: argument 1 is empty: want one log directory"},
		{[]string{"tail", ""}, "auditseg tail: argument 1 is empty: want one log directory or segment file"},
		{[]string{"verify", ".", ""}, "auditseg verify: argument 2 is empty: want at least one log directory or segment file"},
		{[]string{"inspect", ""}, "auditseg inspect: argument 1 is empty: want one segment file or archive"},
		{[]string{"compress-finished", ""}, "auditseg compress-finished: argument 1 is empty: want one log directory"},
	} {
		out, stderr, code := execute(t, nil, c.args...)
		if code != exitUsage || out != "" || stderr != c.want {
			t.Errorf("%s: exit %d (want %d), stdout %q, stderr %q (want %q)", strings.Join(c.args, " "), code, exitUsage, out, stderr, c.want)
		}
	}
}

// A flag given an empty value, as an unset shell variable gives, is
// refused rather than read as the flag left out: `tail --cursor-file ""`
// replayed from -n on every run and stored nothing, silently (found by a
// hostile-user review).
func TestEmptyFlagValueIsRefused(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if _, stderr, code := execute(t, []byte("a\n"), "write", "-q", log); code != exitOK {
		t.Fatalf("write: exit %d: %s", code, stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "-n", "+1", "--cursor-file", "", log}, "--cursor-file: empty path"},
		{[]string{"write", "--max-record", "", filepath.Join(dir, "new")}, "--max-record: empty size"},
	} {
		out, stderr, code := execute(t, nil, c.args...)
		if code != exitUsage || out != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q (want %q)", c.args, code, out, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("write with a refused flag created its directory (%v)", err)
	}
}

// Standard input that is a directory (`write DIR < somedir`) is a usage
// error that makes no log: it was read as an error after Open (exit 1,
// "read /dev/stdin: is a directory") and left an empty log behind.
func TestWriteStdinIsADirectory(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "log")
	in, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command(bin, "write", dir)
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "standard input is a directory") {
		t.Fatalf("%v: %s; want exit %d naming standard input", err, out, exitUsage)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("made %s (%v)", dir, err)
	}
}

// The error a run ends with names the subcommand that ran, as the lines
// the run printed before it do ("auditseg write: ..."); it said only
// "auditseg: " (found by a hostile-user review). A message that starts
// with the command already (wantArgs) or with the bare subcommand name
// (pkg/verify's "verify: ...") does not say it twice. The line is what
// main prints, so the binary is run.
func TestFinalErrorNamesTheSubcommand(t *testing.T) {
	bin := buildBinary(t)
	missing := filepath.Join(t.TempDir(), "missing")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"write", filepath.Join(file, "log")}, "auditseg write: open log directory: "},
		{[]string{"tail", missing}, "auditseg tail: "},
		{[]string{"verify", missing}, "auditseg verify: stat " + missing + ": no such file or directory"},
		{[]string{"inspect", missing}, "auditseg inspect: "},
		{[]string{"compress-finished", missing}, "auditseg compress-finished: "},
		{[]string{"tail", "--bogus", missing}, "auditseg tail: unknown flag: --bogus\nsee 'auditseg tail --help'"},
		{[]string{"tail"}, "auditseg tail: want one log directory or segment file, got none"},
		{[]string{"bogus"}, "auditseg: unknown command \"bogus\""},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Stdin = strings.NewReader("a\n")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.HasPrefix(stderr.String(), c.want) ||
			strings.Count(stderr.String(), missing) > 1 {
			t.Errorf("%s: %v, stderr %q; want exit %d and %q first", strings.Join(c.args, " "), err, stderr.String(), exitUsage, c.want)
		}
	}
}
