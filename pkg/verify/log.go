package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/auditseg/auditseg/internal/cancel"
	"github.com/auditseg/auditseg/pkg/segment"
)

// unit is one log directory, verified whole (a directory argument) or
// through some of its files (file arguments).
type unit struct {
	dir     string
	whole   bool
	planned bool // plan has given it its jobs (a directory named twice)
	listing segment.Listing
	listed  bool // listing is valid
	alive   bool
	pid     int
	// from is the first segment the live writer appends to, from LOCK
	// as it was before any segment was read (0: not known). No frame
	// lands below it any more (FORMAT.md section 9): the segments there
	// were final when they were read, whatever came after.
	from    uint64
	lock    lockStamp // of the LOCK file when alive was asked
	jobs    []int
	results []*result // in sequence order, vanished files dropped
	// gone holds the numbers of segments listed and then removed before
	// they could be opened (retention), to tell their holes from gaps.
	gone map[uint64]bool
	// older is which of the results removedWhileRead found gone: one
	// listing, so they stay gone (segment.Gone).
	older segment.Gone
	// anchors are Options.Anchors, for the one log a run with anchors
	// checks.
	anchors anchors
}

type job struct {
	path string
	size int64
	// notRegular is the listing's segment.Entry.NotRegular: the file is
	// reported unreadable, never opened.
	notRegular error
}

// Dir verifies the log in dir.
func Dir(dir string, opts Options) (*Report, error) {
	return DirContext(context.Background(), dir, opts)
}

// DirContext is Dir, stopped when ctx is done (PathsContext).
func DirContext(ctx context.Context, dir string, opts Options) (*Report, error) {
	dir = segment.CleanName(dir)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("verify: %s is not a directory", dir)
	}
	return PathsContext(ctx, []string{dir}, opts)
}

// Files verifies individual segment files (or archives). Files of the same
// directory are checked as part of that log: chained when consecutive, and
// judged against the log's writer and newest segments, but gaps between
// them and other files of the directory are not reported.
func Files(paths []string, opts Options) (*Report, error) {
	return FilesContext(context.Background(), paths, opts)
}

// FilesContext is Files, stopped when ctx is done (PathsContext).
func FilesContext(ctx context.Context, paths []string, opts Options) (*Report, error) {
	for _, p := range paths {
		// Followed: a link to a log directory is a directory (Paths
		// would verify it as a whole log).
		if st, err := os.Stat(segment.CleanName(p)); err == nil && st.IsDir() {
			return nil, fmt.Errorf("verify: %s is a directory", p)
		}
	}
	return PathsContext(ctx, paths, opts)
}

// Paths verifies each path: a directory as a whole log, anything else as a
// segment file. The error is for what prevents verification (a path that
// does not exist, a directory that cannot be listed); damage and files that
// cannot be read are in the report. A log or segment named more than once,
// in other words too (a link to the directory, a segment file and its
// directory), is checked once, a segment file of a directory also given
// in that directory's log. No path at all is refused, with an error
// wrapping os.ErrInvalid (so is it by Files).
func Paths(paths []string, opts Options) (*Report, error) {
	return PathsContext(context.Background(), paths, opts)
}

// PathsContext is Paths, stopped when ctx is done: no segment is started
// after that, a wait for a lease's break or before a live writer's
// segments are read again ends, and the run returns no report, only an
// error wrapping ctx's (context.Canceled, say) and its cause: what was
// read by then is no verdict on the log.
func PathsContext(ctx context.Context, paths []string, opts Options) (*Report, error) {
	if len(paths) == 0 {
		// A report of nothing is clean: a gate fed an empty list would pass.
		return nil, fmt.Errorf("verify: no path given: %w", os.ErrInvalid)
	}
	o := opts.withDefaults()
	o.ctx = ctx
	if err := stopped(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	units, jobs, err := plan(paths, &o)
	if err != nil {
		return nil, err
	}
	if len(o.Anchors) > 0 {
		if len(units) != 1 {
			return nil, fmt.Errorf("verify: anchors need exactly one log, and %d were named: %w", len(units), os.ErrInvalid)
		}
		if units[0].anchors, err = newAnchors(o.Anchors, units[0], paths); err != nil {
			return nil, err
		}
	}
	results := runJobs(jobs, &o)
	if err := stopped(ctx); err != nil {
		return nil, err // results of the jobs not started are nil
	}
	rep := newReport(&o)
	rep.whole = len(units) == 1 && units[0].whole
	for _, u := range units {
		for _, j := range u.jobs {
			if r := results[j]; !r.vanished {
				u.results = append(u.results, r)
			} else if r.named {
				if u.gone == nil {
					u.gone = map[uint64]bool{}
				}
				u.gone[r.order] = true
			}
		}
		sort.SliceStable(u.results, func(a, b int) bool { return u.results[a].order < u.results[b].order })
		if !u.alive {
			// A writer that started while the segments were read may have
			// been writing into one of them (the empty segment the last
			// writer left, or one it recovered): what looked like a dead
			// writer's leftovers may be its work in progress. One that
			// started and closed meanwhile (a short `auditseg write`)
			// rewrote the LOCK file: what was read may be stale.
			u.alive, u.pid = writerAlive(u.dir, &o)
		}
		if u.alive {
			recheckLive(u, &o)
		} else if stampLock(u.dir) != u.lock {
			recheckStale(u, &o)
		}
		rep.Logs = append(rep.Logs, LogReport{Dir: u.dir, WriterAlive: u.alive, WriterPID: u.pid})
		place(ctx, u, rep)
	}
	// A recheck or a link's digest cut short by ctx would be a verdict
	// on segments not read.
	if err := stopped(ctx); err != nil {
		return nil, err
	}
	rep.Totals.Elapsed = time.Since(start)
	return rep, nil
}

// stopped is the error of a run whose ctx is done, nil before.
func stopped(ctx context.Context) error {
	if err := cancel.Err(ctx); err != nil {
		return fmt.Errorf("verify: stopped: %w", err)
	}
	return nil
}

func newReport(o *Options) *Report {
	return &Report{Version: ReportVersion, Quick: o.Quick, Logs: []LogReport{}, Segments: []SegmentReport{},
		Findings: []Finding{}, Totals: Totals{Findings: make(map[Class]int)}, maxFindings: o.MaxFindings}
}

// runJobs checks every segment, o.Workers at a time.
func runJobs(jobs []job, o *Options) []*result {
	results := make([]*result, len(jobs))
	var total int64
	for _, j := range jobs {
		total += j.size
	}
	if len(jobs) < o.Workers {
		jo := *o
		jo.spareCore = true
		o = &jo
	}
	idx := make(chan int)
	done := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Workers, max(len(jobs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The buffer sealed segment files are read into, or through
			// (checkPath); --quick reads only their headers and footers,
			// and through it the zeros of segments not sealed.
			buf, _ := segment.AllocHuge(windowSize) // nil: through the mappings
			defer func() { _ = segment.Unmap(buf) }()
			for i := range idx {
				if o.ctx.Err() != nil {
					continue // the run is stopped: no segment is started
				}
				if err := jobs[i].notRegular; err != nil {
					results[i] = unreadable(jobs[i].path, o, err)
				} else {
					results[i] = checkPath(jobs[i].path, o, buf)
				}
				done <- i
			}
		}()
	}
	go func() {
	feed:
		for i := range jobs {
			select {
			case idx <- i:
			case <-o.ctx.Done():
				break feed
			}
		}
		close(idx)
		wg.Wait()
		close(done)
	}()
	var n int64
	for i := range done {
		n += jobs[i].size
		if o.Progress != nil {
			o.Progress(n, total)
		}
	}
	return results
}

// openTail returns the index of the first segment of the unit's unsealed
// tail: the run of newest segments without a valid footer. A writer keeps a few
// there (being sealed, active, prepared); after a crash they are what
// recovery repairs. ctx ends a footer's wait for a lease's break: the
// run, stopped, then returns no report (PathsContext).
func openTail(ctx context.Context, u *unit) int {
	from := uint64(0)
	if !u.whole && u.listed {
		// Some files of a directory: the tail depends on segments that
		// were not asked for. Peek at the footers of the newer ones.
		asked := map[uint64]*result{}
		for _, r := range u.results {
			asked[r.order] = r
		}
		segs := u.listing.Segments
		for k := len(segs) - 1; k >= 0; k-- {
			r, ok := asked[segs[k].Seq]
			if ok && r.countsSealed() || !ok && sealedOnDisk(ctx, segs[k]) {
				from = segs[k].Seq + 1
				break
			}
		}
	}
	// Nor below the first segment a live writer appends to: its recovery
	// is over, and left what is unsealed there as it is (damaged), for
	// good, as the reader takes it (FORMAT.md section 7).
	from = max(from, u.from)
	i := len(u.results)
	// The tail runs back to the newest segment recovery counts as sealed
	// (countsSealed): recovery reseals what comes after it.
	for i > 0 && !u.results[i-1].countsSealed() && u.results[i-1].order >= from {
		i--
	}
	return i
}

// countsSealed reports whether recovery counts r as sealed, the end of
// what a dead writer left unsealed (FORMAT.md section 8, step 2): an
// archive, or a valid footer under a header recovery accepts. A valid
// footer under a header it refuses (r.refusedHeader: segment.CheckHeader,
// or a bad header) is not: recovery passes over that segment and seals
// the ones before it, which are therefore crash residue, not segments
// that lost their END before a sealed one.
func (r *result) countsSealed() bool {
	return r.rep.Archived || r.sealed && !r.refusedHeader
}

// sealedOnDisk is countsSealed for a segment not asked for, by the same
// function recovery uses (segment.SealedFooter: the header and footer
// are read, nothing mapped). Archives are sealed by construction and are
// not decompressed for this.
func sealedOnDisk(ctx context.Context, e segment.Entry) bool {
	if e.Archived {
		return true
	}
	if e.NotRegular != nil {
		return false
	}
	_, err := segment.SealedFooterContext(ctx, e.Path)
	return err == nil
}

// newest is the highest sequence number in the unit's directory.
func (u *unit) newest() uint64 {
	var n uint64
	if e, ok := u.listing.Last(); ok && u.listed {
		n = e.Seq
	}
	if k := len(u.results); k > 0 {
		n = max(n, u.results[k-1].order)
	}
	return n
}

// place judges each segment by its place in the log, adds the log-level
// findings (gap, chain, unsealed segments, unexpected files) and fills the
// report.
func place(ctx context.Context, u *unit, rep *Report) {
	tail := openTail(ctx, u)
	newest := u.newest()
	links := newChain()
	var prev *result
	for i, r := range u.results {
		var extra []Finding
		add := func(f Finding) { extra = append(extra, f) }
		setState := func(s State) { // a damaged header keeps its state
			if r.rep.State == "" {
				r.rep.State = s
			}
		}
		fatalUnfinished := true
		switch {
		case r.ioErr != nil:
		case r.sealed, !r.footerAbsent:
			// Sealed, or meant to be (a damaged footer or header).
			if !r.sealed && r.walked && !r.hasEnd {
				add(unsealedFinding(r, MissingEnd, "no END frame, and the footer is damaged"))
			}
		case r.rep.Archived:
			// compress-finished archives sealed segments only: an
			// unsealed archive is damage, and no writer recovers it
			// (recovery takes archives for sealed).
			setState(StateUnsealed)
			if r.hasEnd {
				add(unsealedFinding(r, MissingEnd, "an archive of a segment that was never sealed (END frame, no footer): compress-finished archives only sealed segments"))
			} else {
				add(unsealedFinding(r, MissingEnd, "an archive of a segment that was never sealed (no END frame, no footer): compress-finished archives only sealed segments"))
			}
		case r.sealCut && !r.hasEnd:
			// No kill leaves this: a sealer stores a footer only once END
			// is committed, and a killed process's stores stay in the
			// page cache. END was lost (damage, or a power loss under
			// SyncNone), with what it closed: not crash residue.
			setState(StateUnsealed)
			add(unsealedFinding(r, MissingEnd, "no END frame, but a footer stored without its magic: its sealer had found the segment finished, and the END frame is lost"))
		case i < tail:
			setState(StateUnsealed)
			why := "a later segment is sealed"
			if r.order < u.from {
				why = fmt.Sprintf("the live writer appends from segment %d on (its LOCK file), so no writer finishes or seals it", u.from)
			}
			add(unsealedFinding(r, MissingEnd, endless(r)+", and "+why))
		case !u.alive && r.refusal != "":
			// A dead writer's, but recovery leaves it as it is: no
			// crash residue, which writer.Open finishes, but what
			// remains after it as after an earlier recovery (below a
			// writer's first segment, or a sealed one).
			setState(StateUnsealed)
			add(unsealedFinding(r, MissingEnd, endless(r)+", and writer.Open leaves it unsealed: "+r.refusal))
		case r.empty && r.order == newest && r.found.total() == 0:
			setState(StatePrepared)
		case u.alive:
			setState(StateOpen)
			r.rep.Live = true
			r.unfinished = collector{}
		default:
			setState(StateOpen)
			fatalUnfinished = false
			if r.tornTail != nil {
				// Crash residue: recovery puts it under a PAD.
				r.found.drop(Torn, r.tornTail.Offset)
				add(residue(*r.tornTail))
			}
			if r.hasEnd && r.sealCut {
				add(residue(unsealedFinding(r, Unfinished, "END frame written and the footer stored without its magic: its writer died while sealing it (writer.Open seals it)")))
			} else if r.hasEnd {
				add(residue(unsealedFinding(r, Unfinished, "END frame written but the segment was never sealed: its writer died before sealing it (writer.Open seals it)")))
			} else {
				add(residue(unsealedFinding(r, Unfinished, "no END frame and no footer: the writer died while this segment was open (writer.Open finishes and seals it)")))
			}
		}
		if !fatalUnfinished {
			for k := range r.unfinished.list {
				r.unfinished.list[k].Residue = true
			}
		}
		if prev != nil && u.whole && r.order > prev.order+1 && !removedWhileRead(u, i, r) {
			rep.addExtra(gapFinding(u.dir, prev.order, r.order))
		}
		if f, broken := links.link(ctx, r); broken {
			add(f)
		}
		if f, wrong := u.anchors.check(r, func() ([segment.DigestSize]byte, bool) { return links.lostDigest(ctx, r) }); wrong {
			add(f)
		}
		if i == 0 {
			if f, wrong := u.anchors.link(r); wrong {
				add(f)
			}
		}
		prev = r
		rep.addSegment(r, extra, fatalUnfinished)
	}
	if u.anchors != nil {
		present := map[uint64]bool{}
		for _, r := range u.results {
			present[r.order] = true
		}
		for _, f := range u.anchors.missing(u, present, newest) {
			rep.addExtra(f)
		}
		rep.Anchors = u.anchors.reports()
	}
	if u.whole {
		rep.addUnexpected(u)
	}
}

func unsealedFinding(r *result, class Class, reason string) Finding {
	off := r.dataEnd
	if r.hasEnd {
		off = r.endAt
	}
	if off < 0 {
		off = segment.RecordLimit(r.rep.Bytes)
	}
	f := Finding{Class: class, Path: r.rep.Path, Seq: r.rep.Seq, Offset: off, Reason: reason}
	if !r.hasEnd && class == MissingEnd {
		// Without END nothing says where the records stopped: every byte
		// from the end of the readable frames may have held some.
		f.Bytes = max(0, segment.RecordLimit(r.rep.Bytes)-off)
	}
	return f
}

// endless says what r, unsealed and not crash residue, lacks.
func endless(r *result) string {
	switch {
	case r.hasEnd && r.sealCut:
		return "END frame present but its seal did not finish (footer stored without its magic)"
	case r.hasEnd:
		return "END frame present but the segment was never sealed"
	}
	return "neither END frame nor footer"
}

func residue(f Finding) Finding { f.Residue = true; return f }

// drop takes back the finding of class at off, added before: a torn
// tail, which the log finds to be crash residue.
func (c *collector) drop(class Class, off int64) {
	for i, f := range c.list {
		if f.Class == class && f.Offset == off {
			c.list = append(c.list[:i], c.list[i+1:]...)
			c.count[class]--
			return
		}
	}
	if c.omitted > 0 && c.count[class] > 0 { // past the limit, only counted
		c.omitted--
		c.count[class]--
	}
}

func gapFinding(dir string, before, after uint64) Finding {
	first, last := before+1, after-1
	what := fmt.Sprintf("segment %d is missing", first)
	if last > first {
		what = fmt.Sprintf("segments %d to %d are missing (%d segments)", first, last, last-first+1)
	}
	return Finding{Class: Gap, Path: filepath.Join(dir, segment.FileName(first)), Seq: first,
		Reason: fmt.Sprintf("%s between %d and %d; the chain is not checked across the gap", what, before, after)}
}

// addSegment adds one placed segment, its findings and its totals.
func (rep *Report) addSegment(r *result, extra []Finding, fatalUnfinished bool) {
	t := &rep.Totals
	fs := make([]Finding, 0, len(r.found.list)+len(r.unfinished.list)+len(extra))
	fs = append(fs, r.found.list...)
	fs = append(fs, r.unfinished.list...)
	fs = append(fs, extra...)
	sort.SliceStable(fs, func(a, b int) bool { return fs[a].Offset < fs[b].Offset })
	rep.Findings = append(rep.Findings, fs...)

	fatal := r.found.total()
	residue := 0
	if fatalUnfinished {
		fatal += r.unfinished.total()
	} else {
		residue += r.unfinished.total()
	}
	for _, f := range extra {
		if f.Residue {
			residue++
		} else {
			fatal++
		}
		t.Findings[f.Class]++
	}
	for _, c := range []*collector{&r.found, &r.unfinished} {
		for k, v := range c.count {
			t.Findings[k] += v
		}
		t.Omitted += c.omitted
	}
	t.Fatal += fatal
	t.Residue += residue
	r.rep.Findings = fatal + residue
	switch {
	case r.ioErr != nil || fatal > 0:
		r.rep.Status = Fail
	case residue > 0:
		r.rep.Status = Warn
	default:
		r.rep.Status = Pass
	}
	if r.ioErr != nil {
		t.Errors++
	}
	t.Segments++
	if r.sealed {
		t.Sealed++
	}
	t.Records += r.rep.Records
	t.Bytes += r.rep.Bytes
	rep.Segments = append(rep.Segments, r.rep)
}

// addExtra adds a finding that belongs to no present segment (a gap).
func (rep *Report) addExtra(f Finding) {
	rep.Findings = append(rep.Findings, f)
	rep.Totals.Findings[f.Class]++
	if f.Fatal() {
		rep.Totals.Fatal++
	}
}
