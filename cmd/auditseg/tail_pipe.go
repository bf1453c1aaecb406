package main

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watchReaderGone cancels ctx when out is a pipe whose reader has gone
// (`tail -f DIR | grep -m1 x`, after grep exits). A follower of an idle log
// writes nothing, so the SIGPIPE that ends it otherwise would only come
// with the next record, maybe never. It then writes one byte to out, which
// raises that SIGPIPE: the exit is the same as when a record was being
// written (no cursor stored, the consumer may not have read everything).
// For anything but a pipe it does nothing.
func watchReaderGone(ctx context.Context, cancel context.CancelFunc, out *os.File) {
	st, err := out.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The write end of a pipe with no reader polls as POLLERR.
			fds := []unix.PollFd{{Fd: int32(out.Fd()), Events: 0}}
			if n, err := unix.Poll(fds, 0); err == nil && n > 0 && fds[0].Revents&unix.POLLERR != 0 {
				// EPIPE on stdout: SIGPIPE, as for a record, before the
				// follower can store a cursor. Should the write pass after
				// all, stop following anyway.
				_, _ = out.Write([]byte{'\n'})
				cancel()
				return
			}
		}
	}()
}
