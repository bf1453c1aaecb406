package archive

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// task is one segment to compress, or to resolve (original and archive
// both present).
type task struct {
	seq               uint64
	original, archive string
	resolve           bool
}

// progress is one segment's result and the event reported as its
// protocol goes.
type progress struct {
	r   *runner
	res SegmentResult
	ev  Event
}

func (p *progress) fail(err error) SegmentResult {
	p.res.Outcome, p.res.Err = Failed, err
	p.ev.Step, p.ev.Err = StepFailed, err
	p.r.observe(p.ev)
	return p.res
}

func (p *progress) step(s Step) {
	p.ev.Step = s
	p.r.observe(p.ev)
}

// do runs the protocol on one segment, its archive built in out.
func (r *runner) do(t task, out *outBuf) SegmentResult {
	p := &progress{r: r, res: SegmentResult{Seq: t.seq, Original: t.original, Archive: t.archive},
		ev: Event{Seq: t.seq, Original: t.original, Archive: t.archive}}
	before, err := os.Lstat(t.original)
	if err != nil {
		return p.failUnlessGone(t, err)
	}
	im, err := segment.OpenImageContext(r.ctx, t.original)
	if err != nil {
		return p.failUnlessGone(t, err)
	}
	defer im.Close()
	// The original's header and footer are read through a mapping (its
	// bytes with pread, slot.go): if the file is truncated meanwhile,
	// touching the missing pages raises SIGBUS, which would kill the whole
	// run. It fails this segment instead, before any archive of it exists
	// (the mapped reads come before the temporary file is created), with
	// the file and the offset that had no data, as every reader of
	// segments reports it (segment.ChangedError).
	var res SegmentResult
	if err := segment.Guard(im.Data, func() { res = r.archive(t, p, before, im, out) }); err != nil {
		return p.fail(segment.ChangedRead(t.original, changedWhile, before, err))
	}
	return res
}

// changedWhile is what compress-finished says an original that shrank
// under it was doing (segment.ChangedError).
const changedWhile = "being archived"

// archive runs the protocol on the segment do opened: im is its image,
// before what Lstat said of it first.
func (r *runner) archive(t task, p *progress, before os.FileInfo, im *segment.Image, out *outBuf) SegmentResult {
	fail, step := p.fail, p.step
	res, ev := &p.res, &p.ev
	// The plan is a snapshot: check again what made the segment eligible.
	if err := im.Check(); err != nil {
		return fail(err)
	}
	f, err := im.Footer()
	if errors.Is(err, segment.ErrNoFooter) {
		err = fmt.Errorf("%s: %w", t.original, err) // the one error without the file's name
	}
	if err != nil {
		return fail(err)
	}
	src, err := openOriginal(r.ctx, t.original, before, int64(len(im.Data)))
	if err != nil {
		return p.failUnlessGone(t, err)
	}
	defer src.Close()
	o := &original{im: im, src: src, size: int64(len(im.Data)), mtime: before.ModTime(), perm: before.Mode().Perm(), gid: -1, out: out, foot: f}
	if st, ok := before.Sys().(*syscall.Stat_t); ok {
		o.gid = int(st.Gid)
	}
	res.BytesIn, ev.BytesIn = o.size, o.size
	step(StepStart)

	res.Outcome = Compressed
	verified := false
	if t.resolve {
		if verified, err = r.resolve(t, o, f, step); err != nil {
			return p.failUnlessGone(t, err)
		}
		res.Outcome = Resolved
		if !verified {
			res.Outcome = Recompressed
		}
	}
	// written is the archive this run renamed into place, if it did: the
	// one to take back if the original turns out removed meanwhile
	// (removed.go). A leftover archive that verified was not put there by
	// this run, and stays.
	var written os.FileInfo
	if !verified {
		written, err = r.compress(t, o, step)
		if errors.Is(err, errRemoved) {
			return p.skip(reasonRemovedBeforeRename)
		}
		if err != nil {
			return p.failUnlessGone(t, err)
		}
	}
	st, err := os.Lstat(t.archive)
	if err != nil {
		return p.failUnlessGone(t, err)
	}
	res.BytesOut, ev.BytesOut = st.Size(), st.Size()

	// Checked again after the rename (the check before it can be
	// overtaken): by removedMeanwhile itself with KeepOriginal, otherwise
	// wherever the original is found missing on the way to removing it.
	gone := func() bool { return written != nil && removedMeanwhile(t.original, src) }
	if r.opts.KeepOriginal && gone() {
		return r.dropArchive(t, written, p)
	}
	if !r.opts.KeepOriginal {
		now, err := os.Lstat(t.original)
		if err != nil {
			if gone() {
				return r.dropArchive(t, written, p)
			}
			return fail(err)
		}
		if err := changedSince(t.original, before, before.Size(), now, true); err != nil {
			return fail(fmt.Errorf("%w; original kept beside %s", err, t.archive))
		}
		if err := r.opts.FS.Remove(t.original); err != nil {
			// Not dropArchive, even if the original is gone now: this
			// run's own unlink may have gone through before the error
			// (a file system that retries it), and the archive would be
			// the last copy. At worst a segment retention removed stays
			// as its archive, which the next retention run removes.
			return fail(fmt.Errorf("remove original: %w", err))
		}
		step(StepOriginalRemoved)
		res.OriginalRemoved = true // whatever the fsync says: the name is gone
		if err := r.syncDir(); err != nil {
			return fail(fmt.Errorf("original removed, its verified archive %s in place; fsync the directory: %w", t.archive, err))
		}
	}
	step(StepDone)
	return *res
}

// compress runs steps 1 to 5 of the protocol: temp file, fsync, verify,
// rename, directory fsync, and returns what Stat said of the file it
// wrote. On an error before the rename the temp file is removed; the
// original is never touched. errRemoved: the original was removed by
// something else meanwhile, and the archive was not put in place.
func (r *runner) compress(t task, o *original, step func(Step)) (written os.FileInfo, err error) {
	tmp := t.archive + segment.TempExt
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	var f *os.File
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		// Not only on an error: a fault reading the original's mapping
		// (compared through views) unwinds through here to do's Guard.
		if !renamed {
			r.opts.FS.Remove(tmp)
		}
	}()
	var out []byte
	err = r.withCPU(func(s *slot) (err error) {
		out, err = s.encode(r, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The header and footer again after the frame, in a frame zstd
	// skips: readers looking for a time need not decompress.
	out = segment.AppendSummary(out, o.im.Data)
	f, err = r.opts.FS.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create archive: %w", err)
	}
	if err := sameAccess(f, o); err != nil {
		return nil, err
	}
	// Mostly direct to the disk (direct.go), without a CPU slot: another
	// segment compresses meanwhile.
	if err := writeArchive(f, out); err != nil {
		return nil, fmt.Errorf("write archive: %w", err)
	}
	step(StepWritten)
	// The archive keeps its original's modification time, so that archives
	// and originals stay in sequence order by mtime: a retention job that
	// deletes by age (find -mtime) would otherwise take newer originals
	// before an older archive, leaving a gap after it. Set before the
	// fsync, which makes it durable with the data; never through a link.
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(o.mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("set the archive's mtime: %w", err)
	}
	if err := r.opts.FS.Fsync(f); err != nil {
		return nil, fmt.Errorf("fsync archive: %w", err)
	}
	// The file as written, to know it again after the rename: only that
	// file is ever taken back (dropArchive).
	if written, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("stat archive: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return nil, fmt.Errorf("close archive: %w", err)
	}
	step(StepSynced)

	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	// Not wrapped: every error of the verification names the file it is
	// about first (the temporary archive, or the original), and the
	// report prints it as the line's start.
	if err := r.verify(tmp, o); err != nil {
		return nil, err
	}
	step(StepVerified)

	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	// A retention job may have removed the original while it was being
	// compressed (the open file reads on): the archive put in place would
	// bring back a segment it deleted, and if it deleted the next ones too,
	// leave a hole after it, a gap to readers and verify.
	if removedMeanwhile(t.original, o.src) {
		return nil, errRemoved
	}
	if err := r.opts.FS.RenameNoReplace(tmp, t.archive); err != nil {
		return nil, fmt.Errorf("rename archive into place: %w", err)
	}
	renamed = true
	step(StepRenamed)
	if err := r.syncDir(); err != nil {
		return nil, err
	}
	step(StepDirSynced)
	return written, nil
}

// resolve deals with an original found beside its archive. It returns true
// when the archive is verified (and its name durable), false when the
// archive was bad and has been removed, so the segment must be compressed
// again. It removes an archive only when the original is intact (its
// digest verifies); otherwise nobody can tell which copy is right.
func (r *runner) resolve(t task, o *original, f segment.Footer, step func(Step)) (bool, error) {
	aerr := r.verify(t.archive, o)
	if aerr == nil {
		step(StepVerified)
		// The interrupted run fsynced the archive before its rename, but
		// an archive put there by something else (zstd by hand, a copy)
		// may not be durable: it must be before the original goes.
		if err := r.syncFile(t.archive); err != nil {
			return false, err
		}
		// The interrupted run may have died before the rename was durable.
		if err := r.syncDir(); err != nil {
			return false, err
		}
		step(StepDirSynced)
		return true, nil
	}
	if !errors.Is(aerr, segment.ErrCorrupt) {
		return false, aerr // cannot read it now; that says nothing about its content
	}
	if segment.Digest(f.PrevDigest, o.im.Data, f.EndOffset) != f.Digest {
		// aerr names the archive first, and where it differs. %v: the
		// failure is not the archive's damage alone.
		return false, fmt.Errorf("%v, and the original %s fails its digest: both left for inspection (run auditseg verify)",
			aerr, t.original)
	}
	r.opts.Logger.Warn("compress-finished: leftover archive does not verify; replacing it",
		"archive", t.archive, "original", t.original, "reason", aerr)
	if err := r.opts.FS.Remove(t.archive); err != nil {
		return false, fmt.Errorf("remove bad archive: %w", err)
	}
	if err := r.syncDir(); err != nil {
		return false, err
	}
	step(StepArchiveRemoved)
	return false, nil
}

// sameAccess gives the archive f its original's group and permission
// bits: an auditor reads the log through its files' group (the writer
// makes them 0640), and a file created here gets this process's group
// (unless the directory is set-group-ID) and 0640 under the umask, so
// archiving would take the segment from its readers, or give it to
// others. The chown comes first, as it may clear set-ID bits. A group
// this process may not give (not root, not a member) fails the segment:
// its original stays, readable as before.
func sameAccess(f *os.File, o *original) error {
	if o.gid >= 0 {
		if err := f.Chown(-1, o.gid); err != nil {
			return fmt.Errorf("give the archive its original's group %d: %w", o.gid, err)
		}
	}
	if err := f.Chmod(o.perm); err != nil {
		return fmt.Errorf("give the archive its original's mode %v: %w", o.perm, err)
	}
	return nil
}
