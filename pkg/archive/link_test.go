package archive_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
)

// The rename into place by link(2) and unlink(2), archive.LinkNoReplace,
// which RenameNoReplace takes on a file system without renameat2's
// RENAME_NOREPLACE: crashtest.FaultFS.NoRenameNoReplace forces it, its
// unlink an OpRemove of the temporary name inside the OpRename.

// linkRun runs the protocol on fx's log with jobs 1 through fs, taking
// the link and unlink way, and returns segment seq's result.
func linkRun(t *testing.T, fx *fixture, fs *crashtest.FaultFS, seq uint64) archive.SegmentResult {
	t.Helper()
	fs.NoRenameNoReplace = true
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Segments {
		if s.Seq == seq {
			return s
		}
	}
	t.Fatalf("no result for segment %d: %+v", seq, res.Segments)
	return archive.SegmentResult{}
}

// Every archive put in place by link and unlink has one name: none is
// left under its temporary name.
func TestLinkRenameLeavesNoSecondName(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	var mu sync.Mutex
	unlinked := 0
	fs := &crashtest.FaultFS{After: func(c crashtest.Call) {
		if c.Op == crashtest.OpRemove && strings.HasSuffix(c.Path, segment.TempExt) && c.Err == nil {
			mu.Lock()
			unlinked++
			mu.Unlock()
		}
	}}
	if s := linkRun(t, fx, fs, 1); s.Outcome != archive.Compressed {
		t.Fatalf("segment 1: %+v", s)
	}
	if unlinked != 3 {
		t.Errorf("%d temporary names unlinked; want 3, one an archive: the link way was not taken", unlinked)
	}
	fx.checkFinal(t)
}

// link(2) refuses an existing name as RENAME_NOREPLACE does: an archive
// put there between the verification and the rename stays as it is, and
// so does the original.
func TestLinkRenameNeverReplacesAnArchive(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	foreign := []byte("an archive put here by someone else")
	fs := &crashtest.FaultFS{Before: func(c crashtest.Call) {
		if c.Op == crashtest.OpRename && c.To == fx.zst(1) {
			os.WriteFile(c.To, foreign, 0o640)
		}
	}}
	s := linkRun(t, fx, fs, 1)
	if s.Outcome != archive.Failed || !errors.Is(s.Err, os.ErrExist) {
		t.Fatalf("segment 1: %+v; want failed, the archive's name taken", s)
	}
	if b, err := os.ReadFile(fx.zst(1)); err != nil || !bytes.Equal(b, foreign) {
		t.Errorf("the archive put in the way was replaced: %q, %v", b, err)
	}
	if exists(fx.zst(1) + segment.TempExt) {
		t.Error("the temporary archive was left behind")
	}
	fx.checkSafe(t)
}

// An unlink that fails after the link leaves both names of a verified
// archive beside the intact original, and the next run removes the
// second name: at every instant the original or a verified archive is
// there.
func TestLinkRenameUnlinkFailureIsCleanedUp(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	tmp := fx.zst(1) + segment.TempExt
	var between error // what was wrong when the unlink was tried
	fs := &crashtest.FaultFS{Before: func(c crashtest.Call) {
		if c.Op == crashtest.OpRemove && c.Path == tmp && c.N == 1 {
			between = linkedBeside(fx, 1)
		}
	}}
	fs.Inject(crashtest.Fault{Op: crashtest.OpRemove, Path: tmp, N: 1, Persist: true})
	s := linkRun(t, fx, fs, 1)
	if between != nil {
		t.Fatalf("between the link and the unlink: %v", between)
	}
	if s.Outcome != archive.Failed || !errors.Is(s.Err, syscall.EIO) || strings.Count(s.Err.Error(), tmp) != 1 {
		t.Fatalf("segment 1: %+v; want failed with EIO, naming %s once", s, tmp)
	}
	if err := linkedBeside(fx, 1); err != nil {
		t.Fatalf("after the failed unlink: %v", err)
	}
	recoverAndCheck(t, fx, "after the unlink failed")
}

// A process killed between the link and the unlink: the next run
// removes the second name and finishes.
func TestLinkRenameKilledBetweenLinkAndUnlink(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	c := startChild(t, fx.dir, false, 1, childLinkKillEnv+"=1")
	for c.out.Scan() {
	}
	if err := c.cmd.Wait(); !isKilled(err) {
		t.Fatalf("child: %v, want killed between the link and the unlink\n%s", err, c.stderr.String())
	}
	// The segments in flight: a later one may be half written under its
	// temporary name, or linked too (only the CPU work is one job's).
	linked := 0
	for seq := range fx.files {
		if exists(fx.zst(seq)) && exists(fx.zst(seq)+segment.TempExt) {
			linked++
			if err := linkedBeside(fx, seq); err != nil {
				t.Fatalf("after the kill: segment %d: %v", seq, err)
			}
		}
	}
	if linked == 0 {
		t.Fatal("after the kill no archive has its temporary name too")
	}
	recoverAndCheck(t, fx, "killed between the link and the unlink")
}

// linkedBeside says what is wrong, if anything, with segment seq's files
// as a rename by link and unlink leaves them before the unlink: the
// original intact, the archive under both names, one file, verified.
func linkedBeside(fx *fixture, seq uint64) error {
	if b, err := os.ReadFile(fx.seg(seq)); err != nil || !bytes.Equal(b, fx.files[seq]) {
		return errors.New("the original is not there intact")
	}
	a, err := os.Lstat(fx.zst(seq))
	if err != nil {
		return err
	}
	tmp, err := os.Lstat(fx.zst(seq) + segment.TempExt)
	if err != nil {
		return err
	}
	if !os.SameFile(a, tmp) {
		return errors.New("the archive and its temporary name are two files")
	}
	if b, err := segment.ReadArchive(fx.zst(seq)); err != nil || !bytes.Equal(b, fx.files[seq]) {
		return errors.New("the archive does not decompress to the original")
	}
	return nil
}
