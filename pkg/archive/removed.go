package archive

import (
	"errors"
	"io/fs"
	"os"
)

// A retention job (find -delete, logrotate, a script) may remove old
// segments while a run works on them: it shares no lock with this package.
// A segment it removed is not a failure of the run; it is skipped, and the
// run must not leave behind an archive of it (see removedMeanwhile).

// reasonRemoved is the Reason of a segment whose original and archive
// were both found missing by the run (not yet opened, or its archive being
// resolved): something else removed them after the plan was made.
const reasonRemoved = "removed while compress-finished ran (a retention job?); no archive of it either"

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

// skip ends the segment as Skipped, for reason: nothing of it is left to
// archive, and nothing of it was left behind.
func (p *progress) skip(reason string) SegmentResult {
	p.res.Outcome, p.res.Reason, p.res.Err = Skipped, reason, nil
	p.ev.Step, p.ev.Reason, p.ev.Err = StepSkipped, reason, nil
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
