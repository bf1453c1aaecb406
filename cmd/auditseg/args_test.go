package main

import (
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
