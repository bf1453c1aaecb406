// Package archive compresses finished (sealed) segments of an auditseg log
// into zstd archives, crash-safely, and is what `auditseg compress-finished`
// runs. Archives are read back transparently by segment.OpenImage.
//
// An archive NAME.seg.zst is one standard zstd frame holding the segment
// file byte for byte, with the original size in the frame header and the
// frame checksum on, followed by a skippable frame summarizing it (a copy
// of the segment's header and footer, docs/FORMAT.md section 10), so stock
// `zstd -d` reproduces the original and `zstd -t` passes.
//
// # The protocol
//
// An audit trail must never be lost to a crash while it is being archived,
// so each step below is durable before the next starts, and at every
// instant either the original or a verified archive exists:
//
//  1. write NAME.seg.zst.tmp in the log directory (created exclusively,
//     never through a symbolic link, with the original's group and
//     permission bits, so that the archive is readable by those who could
//     read the segment, and by no one else);
//  2. fsync it;
//  3. decompress it again and compare it byte for byte with the original
//     (segment.ArchiveComparer: the checks and decoder readers use, as a
//     stream compared block by block, without a decompressed copy), and
//     the summary after the frame with the original's header and footer;
//  4. rename it to NAME.seg.zst (never replacing an existing file);
//  5. fsync the directory;
//  6. remove NAME.seg (unless Options.KeepOriginal), then fsync the
//     directory again.
//
// A run first cleans up what an interrupted run left: every *.seg.zst.tmp
// is removed (it never replaced anything), and an original found beside an
// archive is resolved by verifying the archive fully against the original
// and then removing the original; if the archive does not match an intact
// original, the archive is removed and the segment compressed again. If
// the original is itself damaged, both are left for a human (verify reports
// them).
//
// # Segments removed meanwhile
//
// A retention job may remove old segments while a run works on them,
// unless it runs under the directory's flock(2) that a run takes (README,
// compress-finished). A segment found gone entirely after
// the plan was made (no original, no archive) is reported as Skipped, not
// Failed: it was removed on purpose. Any other error, an original gone
// while its archive is still there included, fails the segment.
//
// An original removed while it is being compressed still reads (the run
// holds it open), so the run checks before the rename that it still has
// a name (removedMeanwhile): if not, the temp file is removed and the
// segment skipped. Renaming the archive in would bring back a segment the
// job deleted, and if the job also deleted the segments after it, leave a
// hole after it that readers and verify report as a gap. After the rename
// it checks again, and takes back the archive it just put in place
// (dropArchive) if the original went meanwhile. Only an archive this run
// wrote is ever removed so, never an original, and only once the original
// has no name left: the invariant above holds for every segment that
// something else did not remove.
// Without a lock shared with the job this narrows the race but cannot
// close it (removed.go says what is left).
//
// # What is compressed
//
// A segment is compressed when its original is a well-formed sealed segment
// (its footer decodes), it has no archive yet, and it is not the newest
// segment of the directory, whether or not a writer is alive: the newest
// segment is, or is about to become, the one a writer appends to. Options
// MinAge and Keep hold back recent segments.
//
// The bytes compressed are hashed as they go, and a segment whose records
// do not match its footer's digest (damaged after it was sealed) fails
// before its archive is written: its original is the copy to keep.
//
// # Resources
//
// Jobs segments are compressed or verified at once (one CPU slot each),
// and up to twice as many are in flight, so that one segment's writes,
// reads back and fsyncs wait while another uses the CPU. Each segment in
// flight has a buffer for its compressed output, which its archive is
// also read back into (a huge-page mapping the size of the compression
// bound, touched only as far as an archive goes, kept for the run), and
// each slot an encoder and a decoder with their windows (128 KiB at the
// default level), so memory is at most about 2 × Jobs × compressed size
// + Jobs × 10 MiB. Originals are read with pread, 256 KiB at a time, to be
// compressed and compared (their header and footer through a mapping);
// archives are written and read back with direct I/O where the file
// system allows (direct.go), bypassing the page cache. Two runs on one directory
// exclude each other with a flock(2) on the directory itself, so no lock
// file is added to the log directory.
package archive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Options configure Run and PlanDir. The zero value compresses every
// eligible segment with the library's default level on all CPUs.
type Options struct {
	// Level is the zstd encoder level; 0 means zstd.SpeedDefault (about
	// `zstd -3`). zstd.EncoderLevelFromZstd maps numeric zstd levels.
	// Any other value outside zstd.SpeedFastest..SpeedBestCompression is
	// refused by Run and PlanDir (an error wrapping os.ErrInvalid).
	Level zstd.EncoderLevel
	// Jobs is how many segments are compressed or verified at once (CPU
	// slots); <= 0 means runtime.NumCPU().
	Jobs int
	// MinAge skips segments sealed less than MinAge before Now.
	MinAge time.Duration
	// Now is the time MinAge is measured from; zero means time.Now().
	Now time.Time
	// Keep leaves the newest Keep sealed segments (archived or not) alone:
	// none of them is compressed by this run.
	Keep int
	// KeepOriginal keeps NAME.seg beside its verified archive. Readers
	// prefer the original and report the duplicate. A segment found
	// with both files is left alone (Plan.Skipped), its archive not read
	// again; a run without KeepOriginal verifies it and removes the
	// original.
	KeepOriginal bool
	// DryRun plans and returns without touching the directory.
	DryRun bool
	// Logger receives a debug line per step and the failures; nil discards.
	Logger *slog.Logger
	// Observer, if set, is told about every step of the run as it
	// completes, for progress displays. Calls are serialized (never two
	// at once) and made synchronously from the goroutine doing the work,
	// after the step and before the next one starts: keep it quick. It
	// must not call back into this package.
	Observer func(Event)
	// FS performs the file operations the protocol's durability rests on
	// (fs.go); nil means the operating system's. For fault injection and
	// power-cut simulation in tests (crashtest.FaultFS).
	FS FS
}

// Step is what an Event reports.
type Step uint8

// Steps, in the order a segment goes through them. For each segment, the
// Observer sees StepStart, then the protocol steps, then StepDone,
// StepFailed or StepSkipped (StepSkipped may also come without StepStart:
// the segment was gone when the run came to it). StepDirSynced is reported after the rename is durable;
// StepDone after the removal of the original is durable.
const (
	StepPlanned         Step = iota // the plan is made; Event.Plan is set
	StepTempRemoved                 // a leftover *.seg.zst.tmp was removed (Event.Archive)
	StepStart                       // work on a segment starts; Event.BytesIn is its size
	StepWritten                     // the temp file is written (not yet durable)
	StepSynced                      // the temp file is fsynced
	StepVerified                    // the archive decompresses to the original, byte for byte
	StepRenamed                     // the archive has its final name
	StepDirSynced                   // the directory is fsynced: the archive is durable
	StepArchiveRemoved              // a leftover archive that did not verify was removed, or the one just put in place for an original removed meanwhile (then StepSkipped)
	StepOriginalRemoved             // the original is unlinked (durable at StepDone)
	StepDone                        // the segment is finished; Event.BytesOut is the archive size
	StepFailed                      // the segment failed (Event.Err); its original is untouched unless it was removed (StepOriginalRemoved came first)
	StepSkipped                     // something else removed the segment meanwhile (Event.Reason); nothing of it is left
)

var stepNames = [...]string{"planned", "temp-removed", "start", "written", "synced", "verified",
	"renamed", "dir-synced", "archive-removed", "original-removed", "done", "failed", "skipped"}

func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return fmt.Sprintf("Step(%d)", uint8(s))
}

// Event is one step of a run, as given to Options.Observer.
type Event struct {
	Step     Step
	Seq      uint64
	Original string // the segment file
	Archive  string // the archive (or temp file, for StepTempRemoved)
	BytesIn  int64  // segment size
	BytesOut int64  // archive size (StepDone)
	Err      error  // StepFailed
	Reason   string // StepSkipped
	Plan     *Plan  // StepPlanned
}

// Outcome says what Run did to a segment.
type Outcome string

const (
	Compressed   Outcome = "compressed"   // a new archive; the original removed (or kept)
	Resolved     Outcome = "resolved"     // a leftover archive verified; the original removed (or kept)
	Recompressed Outcome = "recompressed" // a leftover archive did not verify; replaced
	Failed       Outcome = "failed"       // Err says why; the original is untouched unless OriginalRemoved (the directory fsync after removing it failed)
	Interrupted  Outcome = "interrupted"  // Run was cancelled while on it; the original is untouched
	Skipped      Outcome = "skipped"      // removed by something else (retention) after the plan was made; Reason says so; not a failure
)

// SegmentResult is what happened to one segment.
type SegmentResult struct {
	Seq             uint64
	Original        string
	Archive         string
	Outcome         Outcome
	BytesIn         int64 // segment size
	BytesOut        int64 // archive size
	OriginalRemoved bool
	Err             error
	Reason          string // Skipped: why
}

// Result is the report of a run.
type Result struct {
	Dir    string
	DryRun bool
	Plan   *Plan
	// TempsRemoved are leftover temp files removed at the start.
	TempsRemoved []string
	// Segments are the segments worked on, and failed ones not worked on
	// (Plan.Skipped with Err; a leftover temp file that could not be
	// removed), in sequence order.
	Segments []SegmentResult
	// Totals over the segments that succeeded. Interrupted segments were
	// being worked on when ctx was cancelled; Skipped ones were removed by
	// something else meanwhile (Outcome Skipped). Neither is a failure.
	Done, Failed      int
	Interrupted       int
	Skipped           int
	BytesIn, BytesOut int64
	Elapsed           time.Duration
}

// Err joins the errors of the failed segments; nil if none failed.
func (r *Result) Err() error {
	var errs []error
	for _, s := range r.Segments {
		if s.Err != nil {
			errs = append(errs, s.Err)
		}
	}
	return errors.Join(errs...)
}

// ErrBusy is returned by Run when another process holds the directory's
// flock: another run, or a retention job run under `flock DIR` (README).
var ErrBusy = errors.New("another process holds this directory's lock (another compress-finished run, or a job run under flock on it)")

// Run cleans up leftovers of interrupted runs, then compresses every
// eligible segment of dir. A segment that fails is reported in the Result
// (see Result.Err) and does not stop the others. The returned error is for
// the run as a whole: the directory cannot be listed or locked, or ctx was
// cancelled (the Result then says what was finished before). After a
// cancellation no new segment is started; the ones in progress stop at the
// next step boundary before the rename, their temp files removed.
func Run(ctx context.Context, dir string, opts Options) (*Result, error) {
	// Locked, listed and fsynced by the name its segments are joined to.
	dir = segment.CleanName(dir)
	start := time.Now()
	res := &Result{Dir: dir, DryRun: opts.DryRun}
	opts, err := opts.withDefaults()
	if err != nil {
		return res, fmt.Errorf("compress %s: %w", dir, err)
	}
	var unlock func()
	if !opts.DryRun {
		if unlock, err = lockDir(dir); err != nil {
			return res, err
		}
		defer unlock()
	}
	plan, err := planDir(ctx, dir, opts)
	if err != nil {
		return res, err
	}
	res.Plan = plan
	r := &runner{dir: dir, opts: opts, ctx: ctx}
	r.observe(Event{Step: StepPlanned, Plan: plan})
	if opts.DryRun {
		res.Elapsed = time.Since(start)
		return res, nil
	}

	stuck, err := r.removeTemps(plan.Temps, res)
	if err != nil {
		res.Elapsed = time.Since(start)
		return res, err
	}
	// Every CPU slot encodes with a stream encoder of its own (slot.go);
	// this one, never used to encode, sizes the buffers.
	bound, err := zstd.NewWriter(nil, encoderOptions(opts)...)
	if err != nil {
		return res, fmt.Errorf("zstd encoder: %w", err)
	}
	defer bound.Close()
	r.bound = bound

	var tasks []task
	var failed []SegmentResult
	for _, s := range plan.Skipped {
		if s.Err != nil {
			failed = append(failed, SegmentResult{Seq: s.Seq, Original: s.Path, Outcome: Failed, Err: s.Err})
		}
	}
	for _, e := range plan.Resolve {
		tasks = append(tasks, task{seq: e.Seq, original: e.Path, archive: e.Archive, resolve: true})
	}
	for _, c := range plan.Compress {
		tasks = append(tasks, task{seq: c.Seq, original: c.Path, archive: c.Archive})
	}
	// A segment whose leftover temp file is still there cannot get a new
	// one (it is created exclusively): it fails, with the reason.
	tasks = slices.DeleteFunc(tasks, func(t task) bool {
		err, ok := stuck[t.seq]
		if ok {
			failed = append(failed, SegmentResult{Seq: t.seq, Original: t.original, Archive: t.archive, Outcome: Failed, Err: err})
			delete(stuck, t.seq)
		}
		return ok
	})
	for seq, err := range stuck { // no segment to archive, but the directory is not clean
		failed = append(failed, SegmentResult{Seq: seq, Outcome: Failed, Err: err})
	}
	slices.SortFunc(tasks, func(a, b task) int { return cmpSeq(a.seq, b.seq) })
	res.Segments = make([]SegmentResult, len(tasks))
	for _, f := range failed {
		r.observe(Event{Step: StepFailed, Seq: f.Seq, Original: f.Original, Archive: f.Archive, Err: f.Err})
		res.Segments = append(res.Segments, f)
	}

	// Jobs CPU slots, twice as many segments in flight: while one waits
	// for an fsync, another uses the CPU. No more slots than segments:
	// --jobs is a user's number, and each slot is a channel entry and
	// goroutines.
	opts.Jobs = max(1, min(opts.Jobs, len(tasks)))
	r.cpu = make(chan *slot, opts.Jobs)
	for range opts.Jobs {
		r.cpu <- &slot{}
	}
	defer func() {
		for range opts.Jobs {
			(<-r.cpu).free()
		}
	}()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(2*opts.Jobs, len(tasks)) {
		wg.Go(func() {
			var out outBuf
			defer out.free()
			for i := range next {
				res.Segments[i] = r.do(tasks[i], &out)
			}
		})
	}
dispatch:
	for i := range tasks {
		if ctx.Err() != nil {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(next)
	wg.Wait()

	kept := res.Segments[:0]
	for _, s := range res.Segments {
		switch {
		case s.Outcome == "": // never started
			continue
		case cancel.Ended(ctx, s.Err):
			s.Outcome = Interrupted
			res.Interrupted++
		case s.Err != nil:
			res.Failed++
		case s.Outcome == Skipped:
			res.Skipped++
		default:
			res.Done++
			res.BytesIn += s.BytesIn
			res.BytesOut += s.BytesOut
		}
		kept = append(kept, s)
	}
	slices.SortFunc(kept, func(a, b SegmentResult) int { return cmpSeq(a.Seq, b.Seq) })
	res.Segments = kept
	res.Elapsed = time.Since(start)
	if ctx.Err() != nil { // cancelled: a context once done stays done
		return res, fmt.Errorf("compress %s: %w", dir, cancel.Err(ctx))
	}
	return res, nil
}

// encoderOptions: the level asked for, the frame checksum, one encoder
// goroutine (slot.go makes a stream encoder per CPU slot). At the default level and below, the window is 128 KiB instead of
// the library's 8 MiB (`zstd -3` uses 2 MiB). Audit records repeat what
// records shortly before them said, not what was said megabytes earlier.
// On 64 MiB segments of the benchmark's text records, one core, medians
// of 4 runs on each of two segments: 2 MiB -> 256 KiB encoded 10-15 %
// faster and decoded ~15 % faster (matches copy from cache), 256 KiB ->
// 128 KiB another ~10 % faster (266/284 ms against 320/318 ms a
// segment), and each step made the output smaller (128 KiB: 13.77 MB,
// 0.4 % below 256 KiB and 0.6 % below `zstd -3`). 64 and 32 KiB were no
// faster (64 KiB 0.1 % smaller, 32 KiB larger). 128 KiB still reaches
// back over 30 records of 4 KiB. Higher levels keep the library's window: whoever asks for them
// asks for ratio over speed.
//
// With that window, WithLowerEncoderMem keeps the encoder's history at
// the window and a block (256 KiB) instead of the library's 1 MiB floor:
// it is shifted more often, but stays in the L2 cache beside the match
// tables. Same output byte for byte; compress-finished --jobs 2 on a 1 GiB
// log, 10 alternating runs: CPU 5.64 -> 5.40 s (median of per-pair
// ratios 0.96), wall 3.04 -> 2.90 s.
func encoderOptions(opts Options) []zstd.EOption {
	o := []zstd.EOption{zstd.WithEncoderLevel(opts.Level),
		zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1)}
	if opts.Level <= zstd.SpeedDefault {
		o = append(o, zstd.WithWindowSize(defaultWindow), zstd.WithLowerEncoderMem(true))
	}
	return o
}

// defaultWindow is the window at the default level and below.
const defaultWindow = 128 << 10

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// withDefaults fills in the defaults, and refuses a Level the encoder does
// not know before a run touches the directory: it failed only when the
// first encoder was made, after the lock, the plan and the cleanup of
// temp files, and a dry run passed it.
func (o Options) withDefaults() (Options, error) {
	if o.Level == 0 {
		o.Level = zstd.SpeedDefault
	}
	if o.Level < zstd.SpeedFastest || o.Level > zstd.SpeedBestCompression {
		return o, fmt.Errorf("zstd encoder level %d: %w: want %d to %d (zstd.EncoderLevelFromZstd maps zstd's numeric levels)",
			o.Level, os.ErrInvalid, zstd.SpeedFastest, zstd.SpeedBestCompression)
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = osFS{}
	}
	o.FS = namedFS{o.FS}
	return o, nil
}

// runner is the state shared by the jobs of one run.
type runner struct {
	dir   string
	opts  Options
	ctx   context.Context
	bound *zstd.Encoder // MaxEncodedSize only
	cpu   chan *slot    // the Jobs CPU slots
	obMu  sync.Mutex
}

func (r *runner) observe(ev Event) {
	switch ev.Step {
	case StepFailed:
		r.opts.Logger.Error("compress-finished: segment failed", "seq", ev.Seq, "file", ev.Original, "err", ev.Err)
	case StepSkipped:
		r.opts.Logger.Info("compress-finished: segment skipped", "seq", ev.Seq, "file", ev.Original, "reason", ev.Reason)
	default:
		r.opts.Logger.Debug("compress-finished", "step", ev.Step.String(), "seq", ev.Seq, "file", ev.Original)
	}
	if r.opts.Observer == nil {
		return
	}
	r.obMu.Lock()
	defer r.obMu.Unlock()
	r.opts.Observer(ev)
}

// removeTemps removes the leftover temp files of interrupted runs. One
// that cannot be removed fails its segment only: stuck maps its sequence
// to the error. A failed directory fsync ends the run.
func (r *runner) removeTemps(temps []string, res *Result) (stuck map[uint64]error, err error) {
	stuck = map[uint64]error{}
	for _, t := range temps {
		if err := r.opts.FS.Remove(t); err != nil && !errors.Is(err, os.ErrNotExist) {
			seq, _, _ := segment.ParseName(strings.TrimSuffix(filepath.Base(t), segment.TempExt))
			stuck[seq] = segment.OpError("remove leftover", t, err)
			continue
		}
		res.TempsRemoved = append(res.TempsRemoved, t)
	}
	if len(res.TempsRemoved) > 0 {
		if err := r.syncDir(); err != nil {
			return nil, err
		}
		for _, t := range res.TempsRemoved {
			r.observe(Event{Step: StepTempRemoved, Archive: t})
		}
	}
	return stuck, nil
}

// lockDir takes an exclusive flock on the directory itself, failing at once
// with ErrBusy if another run holds it. The writer's OFD lock on LOCK is
// unrelated: a writer and a compress-finished run work side by side.
func lockDir(dir string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open log directory %s: %w", dir, err)
	}
	// A run that may read the log but not write its directory (an auditor
	// in its group, a read-only mount) could archive nothing: it would
	// fail every segment in turn, one error each. Said once, before the
	// lock, which would hold up the run that can.
	if err := unix.Faccessat(fd, ".", unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("log directory %s: %w (compress-finished writes its archives there)", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { unix.Close(fd) }, nil
}
