package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// A retention job (find -delete, logrotate, a script) may remove old
// segments while a run works on them: it shares no lock with this package.
// A segment it removed is not a failure of the run; it is skipped, and the
// run must not leave behind an archive of it (see removedMeanwhile).

// The Reasons of a segment skipped as removed meanwhile: its original and
// archive both found missing (not yet opened, or its archive being
// resolved); the original removed while it was compressed, found before
// the rename (the new archive discarded) or after it (taken back).
const (
	reasonRemoved             = "removed while compress-finished ran (a retention job?); no archive of it either"
	reasonRemovedBeforeRename = "removed while compress-finished ran (a retention job?); its new archive was not put in place"
	reasonRemovedAfterRename  = "removed while compress-finished ran (a retention job?); the archive just put in place was removed again"
)

// errRemoved: compress found the original removed before the rename.
var errRemoved = errors.New("original removed while it was being archived")

// vanished reports whether err, met while working on t, is the segment
// having been removed: err is "not found", and neither the original nor
// the archive is there now. Anything else (one of them still there, a
// permission error) stays a failure: only a segment that is gone
// entirely can have been removed on purpose.
func vanished(t task, err error) bool {
	if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	for _, p := range []string{t.original, t.archive} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// removedMeanwhile reports whether the original, open as src, has been
// removed by something else since it was opened: the file has no name left
// (Nlink 0; the open file reads on, so nothing else tells) and nothing is
// at its path. A file put under that name since is not taken for it (the
// check before removing the original then keeps both: "changed while it
// was being archived"), nor is an original renamed elsewhere, whose
// Nlink stays 1; on file systems that rename a removed open file instead
// (NFS) it is not seen either. All of these leave things as they were
// before this check existed: the archive in place, the segment failed.
//
// This narrows the race with a retention job; it cannot close it. The job
// decides from its own listing and unlinks under no lock this package
// sees, so whatever is checked can change right after. It can remove the
// original after the last check with KeepOriginal, and a job that listed
// the original just before this run removed it finds it gone and goes on
// with the next ones: in both cases the archive outlives what the job
// meant to delete, and if the job removed later segments, there is a hole
// after it (a gap) until a retention run removes the archive too. Only a
// lock both take makes the two exclusive: the flock Run holds on the
// directory (`flock DIR RETENTION-COMMAND`), or not running them at the
// same time.
func removedMeanwhile(path string, src *os.File) bool {
	st, err := src.Stat()
	if err != nil {
		return false
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Nlink != 0 {
		return false
	}
	_, err = os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// dropArchive takes back the archive this run renamed into place (written
// is the file it wrote) when its original turned out removed meanwhile,
// and fsyncs the directory, so that the segment stays removed as whoever
// removed it meant, and no hole opens after it if the segments after it
// went too. Only that file is removed: nothing else of the segment exists
// (removedMeanwhile), and no original is ever removed here. A crash before
// the removal is durable leaves the archive, as before this existed.
func (r *runner) dropArchive(t task, written os.FileInfo, p *progress) SegmentResult {
	now, err := os.Lstat(t.archive)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return p.skip(reasonRemovedAfterRename) // the retention job took it too
	case err != nil:
		return p.fail(fmt.Errorf("%s removed while it was being archived (a retention job?), but its archive %s stays: %w", t.original, t.archive, err))
	case !os.SameFile(written, now):
		return p.fail(fmt.Errorf("%s removed while it was being archived (a retention job?), and %s is not the archive this run wrote: left as it is", t.original, t.archive))
	}
	if err := r.opts.FS.Remove(t.archive); err != nil {
		return p.fail(fmt.Errorf("%s removed while it was being archived (a retention job?), but its archive stays: %w", t.original, err))
	}
	if err := r.syncDir(); err != nil {
		return p.fail(fmt.Errorf("%s removed while it was being archived (a retention job?); its archive %s removed too: %w", t.original, t.archive, err))
	}
	p.step(StepArchiveRemoved)
	return p.skip(reasonRemovedAfterRename)
}

// skip ends the segment as Skipped, for reason: nothing of it is left to
// archive, and nothing of it was left behind.
func (p *progress) skip(reason string) SegmentResult {
	p.res.Outcome, p.res.Reason, p.res.Err, p.res.BytesOut = Skipped, reason, nil, 0
	p.ev.Step, p.ev.Reason, p.ev.Err, p.ev.BytesOut = StepSkipped, reason, nil, 0
	p.r.observe(p.ev)
	return p.res
}

// failUnlessGone fails the segment with err, or skips it if err is the
// segment having been removed entirely (vanished).
func (p *progress) failUnlessGone(t task, err error) SegmentResult {
	if vanished(t, err) {
		return p.skip(reasonRemoved)
	}
	return p.fail(err)
}
