package main

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// commandStderr is what every command writes its warnings, progress and
// error line to: the process's standard error under a descriptor of its
// own, set on the root command.
//
// The Go runtime ends a program by SIGPIPE when a write to descriptor 1
// or 2 finds a pipe whose reader has gone, unless SIGPIPE is taken with
// signal.Notify; on any other descriptor the write just fails with EPIPE
// (os/signal, "SIGPIPE"). A reader of stderr that went away (`2>&1 >out
// | head`, a log collector restarted) must not end verify before its
// verdict, tail while its stdout still takes records, or write and
// compress-finished between two steps of their work: written through a
// duplicate of descriptor 2, a line on stderr is lost and the command
// goes on to the exit code its work gives. Standard output keeps the
// default: a consumer of the output that went away (`tail | head`) ends
// the command by SIGPIPE, quietly and with no success reported, as it
// ends cat or grep. Taking SIGPIPE with Notify instead, as write and
// compress-finished did, turns that into an EPIPE each command must
// handle (tail's end by SIGPIPE is the documented one), and must be given
// back around every command run in-process.
//
// One duplicate for the process: tests build a root command per run.
// Should the duplicate fail (no descriptor left), stderr is written as
// before, at the risk this avoids.
var commandStderr = sync.OnceValue(func() *os.File {
	fd, err := unix.FcntlInt(uintptr(unix.Stderr), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.Stderr
	}
	return os.NewFile(uintptr(fd), os.Stderr.Name())
})
