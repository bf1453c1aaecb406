package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/mattn/go-isatty"
)

// isTerminal reports whether w is a terminal. Each stream is asked on its
// own: `auditseg verify dir | less` has a pipe on stdout and a terminal on
// stderr, and must colour neither stdout nor mistake stderr for a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fd := f.Fd()
	return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
}

// useColor reports whether output to w may use colour: a terminal, and
// neither NO_COLOR (https://no-color.org, any non-empty value) nor
// TERM=dumb set.
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

// printable is s, or s quoted as a Go string if it holds a control
// character. A report line shows file names that whoever can write the
// log directory chose: a name with a newline or an escape sequence in it
// could forge a line of the report ("result: PASS") or hide the lines
// after it on a terminal.
func printable(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strconv.Quote(s)
}
