package main

// The default hand-written blocks of docs/BENCHMARKS.md, emitted when the
// doc has none; once edited there, the generator keeps the edited text.

const defaultMethodology = `
## How these figures are made

**One command.** ` + "`make bench`" + ` (= ` + "`cd bench && go run .`" + `) runs every case in at most
about 14 minutes and rewrites this file and ` + "`docs/bench-append.png`" + `. ` + "`make bench-quick`" + `
(` + "`-quick`" + `, under a minute, written under /tmp unless ` + "`OUT=path`" + `) only proves the
harness works; its figures mean nothing. ` + "`go run . -h`" + ` lists the options (` + "`-out`" + ` writes elsewhere, ` + "`-cases`" + ` picks
cases, ` + "`-cold`" + ` drops the page cache before every command-line run). The harness
is its own Go module (` + "`bench/go.mod`" + `), so the peers' dependencies never enter
auditseg's ` + "`go.mod`" + `.

**Side by side.** Every comparison is ours against its peer in the same run.
Runs alternate in a balanced order (the rows of a Williams design: over as
many rounds as there are sides, every side runs right after every other
once, since a run inherits memory and write-back from the one before it;
every side removes what its last run left before the sync that precedes
each run) after one discarded warm-up
run of each side; each side gets 5 measured runs (` + "`-runs`" + `; 3 with ` + "`-quick`" + `). Tables give each
side's median and spread (± half the range of the runs, relative to the
median) and the ratio as the median of the per-round ratios, with their range
in brackets. A bar is judged on that median ratio.

**Warm memory, stated.** This VM returns freed memory to the host, and the
first touch of such a page costs about 10 µs per 4 KiB instead of about
0.8 µs. Every figure here is *warm*: each implementation first runs one
discarded iteration of the same size (Go heap, page cache, the writer's first
segments). Every run still writes fresh files, so the page-cache pages it
fills are newly allocated in every run, for ours and the peer alike. The
library section also lists each implementation's first (warm-up) iteration
at one goroutine as a hint of the cold cost. Command-line runs use a warm page
cache unless ` + "`-cold`" + ` is given; before every one the harness calls sync(2) so
one run's write-back does not land in the next run's time.

**Page costs** (the Machine table) are probed at the start of every run,
in the work directory, per 4 KiB page, the median of 3 rounds of 64 MiB:
write(2) of zeros into a new file (how the peers and ` + "`cat`" + ` fill the page
cache, through the kernel's own mapping of memory), then a fallocated file
mapped as the writer maps a segment, MADV_POPULATE_WRITE, and one store to
each page, twice; then the same in 2 MiB pages (MADV_HUGEPAGE). The
writer's background goroutine pays the populate and the first store for
every page of every segment (its prefault). It maps in 2 MiB pages where
its flushes allow (` + "`pkg/writer/pages.go`" + `: a flush writes whole pages, so
never under SyncAlways): the library runs here (SyncNone) and a fast
` + "`write`" + ` after its first segment. Where a new 4 KiB mapping is dear (on
this PVM guest the hypervisor builds a shadow page-table entry at each
page's first access) the two figures differ by an order of magnitude.

**Library append** runs in the harness process: g goroutines start together
and split a fixed record count; only the append loop is timed (open and close
are not). auditseg Append and the bufio peer, the pair the bars judge, run
the same record count in a cell: the one that takes 0.5 s at the geometric
mean of their warm-up rates, so both write the same bytes (this VM slows
down as a run takes more fresh memory; a count per implementation let one
side run a shorter, faster run than the other); the reference rows take
their own rate's count. A sync(2) precedes every run; the order is
balanced as above. 0.5 s is ` + "`-libtime`" + ` (` + "`-quick`" + `: 0.05 s). Open is not timed,
and auditseg's Open creates and pre-faults the first segment: a head start
of one segment's memory, about a fifth of what a half-second 64 B run
fills (nothing in the sustained runs). Every run uses a fresh directory on
the repository's file system (see Machine), never tmpfs. auditseg runs with
` + "`Sync: SyncNone`" + ` and default 64 MiB segments (sealing still flushes each
finished segment); no peer ever fsyncs. Peers: a sync.Mutex-guarded 64 KiB
bufio.Writer on an os.File (fast; a process crash loses up to 64 KiB of
records whose Write returned); the same with one write(2) per record (the
crash guarantee auditseg gives: the record is in the page cache on return);
github.com/tidwall/wal with NoSync through its batch API (records gathered
under a mutex into a wal.Batch and written every 64 KiB, since its indexes
must be consecutive).

**Sustained append** repeats the 64 B Append-against-bufio comparison with
runs that each append for 10 seconds (` + "`" + `-sustain` + "`" + `; a discarded warm-up of a
fifth of that first; 3 alternating runs per side). A half-second run of
the bufio peer fills at most a few hundred MB of page cache, below the
kernel's dirty-page thresholds (` + "`" + `vm.dirty_background_ratio` + "`" + ` 10 %,
` + "`" + `vm.dirty_ratio` + "`" + ` 20 % of memory), and its file is deleted before any of it
is written back: it copies into page-cache pages that the previous run's
deleted file freed a moment before. A log written for longer keeps
gigabytes in the page cache, so the peer's ` + "`" + `write(2)` + "`" + ` keeps taking memory
this VM has handed back to the host, ~10 µs per 4 KiB page on first
touch (a ` + "`" + `perf record` + "`" + ` of a 100 M-record bufio run: 78 % of samples in
` + "`" + `copy_folio_from_iter_atomic` + "`" + `, the copy into new page-cache pages; the
kernel's dirty throttling, ` + "`" + `balance_dirty_pages` + "`" + `, 0.02 %). auditseg
writes each sealed segment back on its own goroutine and drops its pages
just before it populates the next segment, which reuses that memory
(` + "`" + `pkg/writer/recycle.go` + "`" + `). Both kinds of run are reported and judged
against the same targets: the short runs are the issue's benchmark as
written, the sustained ones what a log under steady load sees on this
machine. On a machine that does not return free memory to a host the
first touch costs ~0.8 µs and the peer's sustained rate would be closer
to its short-run one.

**Latency**: one goroutine appends 64-byte records at 1 M records/s, paced by
spinning on the clock, into 4 MiB segments, for enough records to rotate at
least 10 times; the bufio peer the same way. "Time in the call" is the
Append alone; "from scheduled start" charges a stall to every record queued
behind it (HdrHistogram's coordinated-omission correction), and the bar is
judged on it: at 1 record a µs a stall of S µs at a rotation delays about S
records, and time in the call alone sees only the one call it lands on. The histogram is
log-linear (HdrHistogram style: 64 sub-buckets per power of two, ≤ 1.6 %
error, the bucket's upper bound is reported, the maximum is exact). The cost
of the clock reads is listed: figures near it are clock-bound.

**Command line.** The binary is built once (` + "`go build ./cmd/auditseg`" + ` from the
repository). The input is generated deterministically: audit lines of exactly
100 bytes (timestamp, host, user, action, source address, result, object,
request id), 2 GiB by default (` + "`-quick`" + `: 64 MiB). ` + "`auditseg write DIR < in`" + ` runs
with its default flags (64 MiB segments, ` + "`--sync interval`" + `; every finished
segment is fsynced when sealed) against ` + "`cat in > file`" + ` (no fsync), and,
alternating with them, ` + "`auditseg write --sync none`" + ` (which, like cat, leaves
the data to the kernel's writeback: the like-for-like run). GNU cat 9
copies a regular file to a regular file with copy_file_range(2), inside the
kernel, so that peer never moves the bytes through user space; the same
` + "`write`" + ` runs are therefore also compared with ` + "`cat in | cat > file`" + `, which
reads and writes every byte as ` + "`write`" + ` does (no bar: a reference point).

The read and archive cases use the first segments of the log the last
` + "`write`" + ` run left, a little over 1 GiB of segment files as the issues' bars
say (hard links in a directory of their own). ` + "`tail -n +1 > /dev/null`" + ` (its
output checked once against the input, byte for byte), ` + "`verify`" + ` and
` + "`verify --quick`" + ` run against ` + "`cat`" + ` of the same segment files to /dev/null;
throughput is segment-file bytes over wall time. ` + "`compress-finished --jobs 2`" + `
(its default level, which is zstd's level 3; the segment hashed against
its footer's digest as it is compressed (since 2e3e395), temp file
written with direct I/O, fsync, read back from the disk,
decompress-and-compare, rename, directory fsync, for every segment) runs on a
fresh directory of hard links to those segments each time, against
` + "`zstd -3 -T2`" + ` of exactly the files it archived (no fsync; it skips the
newest segment, as compress-finished does).

**Memory** is the peak resident set. For ` + "`tail -n +1`" + ` and full ` + "`verify`" + `
it is the child's rusage maxrss as GNU time (` + "`/usr/bin/time -f %M`" + `)
reports it: time(1) forks, so the figure is the command's own (the
harness cannot read it itself: Go starts children with vfork, and execve
carries the parent's high-water mark into the child). Without GNU time,
and for ` + "`write`" + `, it is the VmHWM of the child's address space sampled
every 10 ms until it exits, which misses a peak reached in the last
moments of a short run (a 0.1 s ` + "`tail`" + ` of the small log: sampled 49 MiB,
71 MiB by time(1)); for ` + "`tail -f`" + ` it is the VmHWM once it has printed the
whole log. File-backed
pages of mapped segments count. Each command runs on a log of a quarter of the
input and on the whole log (` + "`tail`" + ` and full ` + "`verify`" + `: twice each, the median kept); the figure
must not grow with the log.

**Follow latency**: the harness appends records through the library while a
child ` + "`auditseg tail -f`" + ` prints them into a pipe the harness reads; latency is
from just before Append to the line arriving, on one monotonic clock. The
idle cost is the child's user+system CPU time (from /proc/PID/stat) over the
10 seconds (` + "`-quick`" + `: 2 s) after the last record.

**Not available yet** means the command (or a flag the case needs) is missing
from the binary built from this checkout (checked with ` + "`auditseg help CMD`" + `);
the case runs as soon as it exists.
`

const defaultAnalysis = `
## Analysis

(Hand-written: after a full run on a quiet machine, say here what limits each
missed bar, from the profiles above, and what was tried.)
`
