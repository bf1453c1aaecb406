package main

import (
	"io"
	"os"

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
