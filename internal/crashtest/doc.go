// Package crashtest is auditseg's reliability suite: kill loops against the
// writer library and the `auditseg write` command, simulated power cuts
// (page by page or sector by sector, from the flushes the writer makes),
// power cuts of a real ext4 on a loop device (TestPowerLossExt4: root
// only; AUDITSEG_REQUIRE_LOOP=1 makes its skip a failure),
// corruption matrices, disk-full and I/O-error injection, a follower under
// churn, and hostile input. docs/RELIABILITY.md lists what each test
// proves and the figures of the last long run.
//
// The tests build two child programs with `go build` (crashchild, in this
// directory, and cmd/auditseg) and kill them with SIGKILL at random instants
// and at injected points. Kill points are implemented in the child only,
// through writer.Options.FS (FaultFS), so no test hook lives in the writer.
//
// By default the suite runs a bounded number of iterations sized for CI.
// The long run takes the iteration count from the environment:
//
//	AUDITSEG_CRASH_ITERATIONS=1000 go test -v -timeout 60m -run 'TestKillLoop|TestCLIKillLoop|TestCorruption' ./internal/crashtest/
//
// or from a test flag: go test ./internal/crashtest/ -args -crash.iterations=1000.
// Every test logs one "SUMMARY" line with its figures (run with -v).
//
// TestSoak is a randomized soak: per seed, sessions of random writer
// options and workloads with a follower and compress-finished running
// underneath, each ending with Close or with SIGKILL of a child (the test
// binary re-executed as the writer). By default it runs 3 short seeds; a
// campaign runs new seeds for a duration, and a failure names its seed:
//
//	AUDITSEG_SOAK=20m go test -count=1 -v -timeout 30m -run 'TestSoak$' ./internal/crashtest/
//	AUDITSEG_SOAK_SEED=<seed> go test -count=1 -v -run 'TestSoak$' ./internal/crashtest/
//
// (or -args -soak.duration=20m).
package crashtest
