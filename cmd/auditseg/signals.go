package main

import (
	"os"
	"os/signal"
	"syscall"
)

// stopSignals are the signals that end write, tail, compress-finished
// and verify cleanly: SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session
// sends it). SIGINT or SIGHUP ignored when the command started (nohup, a
// background job of a shell without job control) are left out: whoever
// started it asked for it to outlive them, and Notify would install a
// handler even for those, undoing that (os/signal: "If the program was
// started with SIGHUP or SIGINT ignored, and Notify is called for either
// signal, a signal handler will be installed for that signal and it will
// no longer be ignored").
func stopSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGTERM}
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}
