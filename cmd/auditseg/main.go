// Command auditseg writes, reads, verifies and archives auditseg logs.
//
// This package is a thin layer: flags, output and exit codes. The format
// lives in pkg/segment, the logic in pkg/writer, pkg/reader and pkg/verify.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...";
// versionString adds what the Go toolchain recorded in the binary.
var version = "dev"

// versionString is version, or the module version `go install` recorded,
// with the commit the binary was built from (and "+dirty" for a tree with
// uncommitted changes) and the Go release: which build wrote a log matters
// when a log is audited.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	v := version
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev != "" && !strings.Contains(v, rev) { // a pseudo-version holds it
		return fmt.Sprintf("%s (commit %s%s, %s)", v, rev, dirty, bi.GoVersion)
	}
	return fmt.Sprintf("%s (%s)", v, bi.GoVersion)
}

// Exit codes shared by every command (documented in README.md). A command
// may define more of its own (verify: 1 findings, 3 unfinished tail).
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and found a problem / could not finish
	exitUsage   = 2 // bad flags or arguments, or an I/O error before any work
)

// exitError carries a specific exit code up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// subcommands is filled by init functions of the command files, so each
// command lives in its own file.
var subcommands []func() *cobra.Command

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "auditseg",
		Short:         "High-rate audit logs in memory-mapped segment files",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetErr(commandStderr())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(exitUsage, fmt.Errorf("%w\nsee '%s --help'", err, c.CommandPath()))
	})
	for _, mk := range subcommands {
		root.AddCommand(mk())
	}
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if c == nil {
		c = root
	}
	// The exit code is what a caller goes by: a reader of stderr that
	// went away (2>&1 | head) must not turn it into a death by SIGPIPE
	// as the error is said (commandStderr). The line is lost, the code
	// stays.
	fmt.Fprintln(c.ErrOrStderr(), errorLine(c, err))
	return exitCode(err)
}

// errorLine is the line err, which ended c, is said in: after c's path
// ("auditseg write: "), as the lines the run printed before it, so that
// a log of several commands tells which one failed. A message that names
// the command already, with its path (wantArgs) or its bare name (a
// library's own prefix, pkg/verify's "verify: "), does not say it twice.
func errorLine(c *cobra.Command, err error) string {
	msg, path := err.Error(), c.CommandPath()
	if strings.HasPrefix(msg, path+": ") {
		return msg
	}
	if c != c.Root() {
		msg = strings.TrimPrefix(msg, c.Name()+": ")
	}
	return path + ": " + msg
}

// wantArgs checks a subcommand's argument count, atLeast to atMost (-1:
// no limit), saying what it wants (what: "one log directory") and naming the
// subcommand, which cobra's own "accepts 1 arg(s), received 2" does not.
func wantArgs(what string, atLeast, atMost int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		for i, a := range args {
			if a == "" {
				// Most often an unset shell variable ("$LOGDIR"); the
				// system's own error, "mkdir : no such file or
				// directory", names nothing.
				return &exitError{code: exitUsage, err: fmt.Errorf("%s: argument %d is empty: want %s", c.CommandPath(), i+1, what)}
			}
		}
		if len(args) >= atLeast && (atMost < 0 || len(args) <= atMost) {
			return nil
		}
		got := "none"
		if len(args) > 0 {
			got = plural(len(args), "argument")
		}
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: want %s, got %s", c.CommandPath(), what, got)}
	}
}

// exitCode maps an error from a command to the process exit code.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}
