// Package soak holds a randomized, seeded soak test of the writer, the
// reader, verify and compress-finished together; it has no other code.
//
// Each seed is one log directory that goes through two to four sessions.
// A session opens a writer with random options (segment size from 64 KiB
// to 1 MiB, record limit, sync mode and interval, 1-8 goroutines of
// Append, Reserve/Commit/Abort and Sync, Close from another goroutine),
// prefills a few records, starts a follower (First, Last(n), After, At or
// Since, whose exact expected output is known) and, two times in three,
// an archiver running compress-finished over the live log. It ends with
// Close, or with a real kill -9 of a child process running the writer
// (this test binary, re-executed), after which the crashed directory is
// verified (exit 0 or 3), read, copied and reopened. Throughout, a book of
// every record whose Append or Commit returned nil checks that each is
// read exactly once, in order, intact; aborted and refused ones never
// appear; the follower delivers exactly the log from its start.
//
// go test runs two seeds (one with -short); a longer campaign:
//
//	AUDITSEG_SOAK_DURATION=20m go test -race -run 'TestSoak$' -timeout 30m ./internal/soak
//
// AUDITSEG_SOAK_SEEDS=7 (or 1-20,33) replays given seeds: every failure
// names its seed. AUDITSEG_SOAK_KEEP=DIR keeps each seed's directories
// under DIR; AUDITSEG_SOAK_STOP=1 stops at the first failing seed;
// AUDITSEG_SOAK_LONGHOLD=1 adds sessions whose reservations outlive a
// short Close timeout.
package soak
