package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Plan is what a run will do, decided from one listing of the directory.
type Plan struct {
	Dir string
	// Temps are leftover *.seg.zst.tmp files of interrupted runs, to be
	// removed. (*.seg.tmp files belong to the writer and are left alone.)
	Temps []string
	// Resolve are sealed originals found beside their archive (an
	// interrupted run): the archive is verified against the original,
	// then the original removed. Keep and MinAge do not apply: the
	// decision to archive them was taken by the run that was interrupted.
	// With KeepOriginal they are Skipped instead: both stay either way.
	Resolve []Candidate
	// Compress are the segments to compress, in sequence order.
	Compress []Candidate
	// Skipped are the segments left alone, with the reason. Segments that
	// are only present as archives are not listed; Archived counts them.
	Skipped  []Skip
	Archived int
}

// Candidate is a segment a run works on.
type Candidate struct {
	Seq      uint64
	Path     string // the original, NAME.seg
	Archive  string // NAME.seg.zst, existing for Resolve, to be made for Compress
	Size     int64
	SealedAt time.Time
}

// Skip is a segment a run leaves alone.
type Skip struct {
	Seq  uint64
	Path string
	// Reason says why, without the path (what prints it gives Path).
	Reason string
	// Damaged: the file is not a well-formed segment file (its header or
	// footer is damaged, it is not a regular file). Anything else skipped
	// is by design (the newest segment, --keep, --min-age, not sealed
	// yet), or Err is set.
	Damaged bool
	// Err: the file could not be read (permissions, an I/O error), or it
	// changed while it was read (a *segment.ChangedError: truncated).
	// Nobody can tell whether it should have been archived, so Run
	// reports the segment as failed.
	Err error
}

// Bytes is the size of the originals the run will read.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, c := range p.Resolve {
		n += c.Size
	}
	for _, c := range p.Compress {
		n += c.Size
	}
	return n
}

// Segments is how many segments the run will work on.
func (p *Plan) Segments() int { return len(p.Resolve) + len(p.Compress) }

// PlanDir decides what Run would do in dir with opts, without changing
// anything (Run calls it; a dry run returns only this).
func PlanDir(dir string, opts Options) (*Plan, error) {
	return planDir(context.Background(), dir, opts)
}

// planDir is PlanDir whose opens of segments stop waiting for a lease's
// break when ctx is done: Run's, cancelled, is not held up for as long as
// lease-break-time by each segment a lease is on (such a segment is
// skipped with an error wrapping ctx's, which Run counts as interrupted).
func planDir(ctx context.Context, dir string, opts Options) (*Plan, error) {
	dir = segment.CleanName(dir)
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", dir, err)
	}
	l, err := segment.List(dir)
	if err != nil {
		return nil, err
	}
	p := &Plan{Dir: dir}
	for _, t := range l.Temps {
		if strings.HasSuffix(t, segment.ArchiveExt+segment.TempExt) {
			p.Temps = append(p.Temps, t)
		}
	}
	keep := opts.Keep
	for i := len(l.Segments) - 1; i >= 0; i-- {
		e := l.Segments[i]
		if i == len(l.Segments)-1 {
			if !e.Archived {
				p.Skipped = append(p.Skipped, Skip{Seq: e.Seq, Path: e.Path, Reason: "newest segment (a writer appends to it, or will)"})
				if _, _, skip := inspect(ctx, e); skip.Reason == "" {
					keep-- // sealed (every writer closed): one of the newest Keep
				}
				continue
			}
		}
		if e.Archived {
			p.Archived++
			keep-- // an archive is a sealed segment
			continue
		}
		c := Candidate{Seq: e.Seq, Path: e.Path, Archive: archivePath(e)}
		f, size, skip := inspect(ctx, e)
		if skip.Reason != "" {
			skip.Seq, skip.Path = e.Seq, e.Path
			p.Skipped = append(p.Skipped, skip)
			continue
		}
		c.Size, c.SealedAt = size, time.Unix(0, f.SealedAt)
		switch age := opts.Now.Sub(c.SealedAt); {
		case e.Duplicate != "" && opts.KeepOriginal:
			// Both are kept whatever the archive holds, and readers take
			// the original: reading every kept archive again on each run
			// would make a run's cost grow with the log, not with what is
			// new. A run without KeepOriginal verifies it (Resolve).
			keep--
			p.Skipped = append(p.Skipped, Skip{Seq: e.Seq, Path: e.Path,
				Reason: "archived already; --keep-original keeps both, the archive not read again"})
		case e.Duplicate != "":
			keep--
			p.Resolve = append(p.Resolve, c)
		case keep > 0:
			keep--
			p.Skipped = append(p.Skipped, Skip{Seq: e.Seq, Path: e.Path, Reason: fmt.Sprintf("one of the newest %d sealed segments (--keep)", opts.Keep)})
		case opts.MinAge > 0 && age < opts.MinAge:
			keep--
			p.Skipped = append(p.Skipped, Skip{Seq: e.Seq, Path: e.Path,
				Reason: fmt.Sprintf("sealed %s ago, less than --min-age %s", age.Round(time.Second), opts.MinAge)})
		default:
			keep--
			p.Compress = append(p.Compress, c)
		}
	}
	slices.Reverse(p.Resolve)
	slices.Reverse(p.Compress)
	slices.Reverse(p.Skipped)
	return p, nil
}

func archivePath(e segment.Entry) string {
	if e.Duplicate != "" {
		return e.Duplicate
	}
	return filepath.Join(filepath.Dir(e.Path), segment.ArchiveName(e.Seq))
}

// inspect returns the footer and size of a sealed, well-formed segment
// file, or why it is to be skipped (Skip's Reason, Damaged and Err).
func inspect(ctx context.Context, e segment.Entry) (segment.Footer, int64, Skip) {
	im, err := segment.OpenEntryContext(ctx, e)
	return inspectImage(e.Path, im, err)
}

// inspectImage is inspect of what OpenImage(path) returned (apart so that
// a test can truncate the file between OpenImage and the footer's read,
// which nothing else can time).
//
// A file truncated under the plan is met at OpenImage's read of the header
// or at the read of the footer here, whichever the truncation came
// before, and is judged alike either way (segment.ChangedError): nobody
// can tell whether it was to be archived, as for a file that cannot be
// read, so the run fails it, as it does when the truncation comes while
// the segment is compressed. It is not damage (what it held is gone from
// under the read, not found bad: skipping it with a warning would let a
// run pass over records lost meanwhile), nor retention (which removes
// files, and is skipped).
func inspectImage(path string, im *segment.Image, err error) (f segment.Footer, size int64, skip Skip) {
	var errno syscall.Errno
	var changed *segment.ChangedError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Removed since the listing: retention, or another tool.
		return f, 0, Skip{Reason: "removed since the directory was listed"}
	case errors.As(err, &changed), errors.As(err, &errno) && !errors.Is(err, segment.ErrCorrupt):
		return f, 0, unreadable(path, err)
	case err != nil:
		return f, 0, Skip{Reason: "cannot open: " + cause(path, err), Damaged: true}
	}
	defer im.Close()
	if err := im.Check(); err != nil {
		return f, 0, Skip{Reason: "damaged (run auditseg verify): " + cause(path, err), Damaged: true}
	}
	// Under the guard: a fault would kill the run.
	if gerr := im.Guard(func() { f, err = im.Footer() }); gerr != nil {
		return f, 0, unreadable(path, gerr)
	}
	switch {
	case errors.Is(err, segment.ErrNoFooter):
		return f, 0, Skip{Reason: "not sealed"}
	case err != nil:
		return f, 0, Skip{Reason: "footer damaged (run auditseg verify): " + cause(path, err), Damaged: true}
	}
	return f, im.FileSize, Skip{}
}

func unreadable(path string, err error) Skip {
	return Skip{Reason: "cannot read: " + cause(path, err), Err: err}
}

// cause is err, met on the file at path, without the path: a Skip's
// Reason goes after its Path ("skip PATH: REASON"), and the errors of
// segment name the file first, an *fs.PathError after its operation.
func cause(path string, err error) string {
	return strings.TrimPrefix(segment.FileError(path, "", err).Error(), path+": ")
}
