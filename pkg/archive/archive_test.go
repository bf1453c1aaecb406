package archive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/klauspost/compress/zstd"
)

const segSize = segment.MinSegmentSize

func run(t *testing.T, dir string, opts archive.Options) *archive.Result {
	t.Helper()
	res, err := archive.Run(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunCompressesSealedSegments(t *testing.T) {
	fx := newFixture(t, 5, segSize)
	// Archives keep their originals' modification times (an age-based
	// retention job then takes segments in order, archived or not).
	mtime := func(seq uint64) time.Time {
		return time.Date(2026, 1, 2, 3, 4, 5, int(seq)*1000, time.UTC).Add(time.Duration(seq) * time.Hour)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if err := os.Chtimes(fx.seg(seq), time.Time{}, mtime(seq)); err != nil {
			t.Fatal(err)
		}
	}
	var steps []string
	res := run(t, fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 2 {
			steps = append(steps, ev.Step.String())
		}
	}})
	fx.checkFinal(t)
	if res.Done != 4 || res.Failed != 0 || len(res.Segments) != 4 {
		t.Fatalf("done %d failed %d segments %d, want 4 0 4", res.Done, res.Failed, len(res.Segments))
	}
	if res.BytesIn != 4*segSize || res.BytesOut <= 0 || res.BytesOut*4 > res.BytesIn {
		t.Errorf("bytes in %d out %d", res.BytesIn, res.BytesOut)
	}
	want := []string{"start", "written", "synced", "verified", "renamed", "dir-synced", "original-removed", "done"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps of segment 2: %v, want %v", steps, want)
	}
	for i, s := range res.Segments {
		if s.Seq != uint64(i+1) || s.Outcome != archive.Compressed || !s.OriginalRemoved {
			t.Errorf("segment result %+v", s)
		}
		st, err := os.Stat(s.Archive)
		if err != nil || st.Size() != s.BytesOut || st.Mode().Perm() != 0o640 || !st.ModTime().Equal(mtime(s.Seq)) {
			t.Errorf("%s: %v, size %d mode %v mtime %v (original's %v)", s.Archive, err, s.BytesOut, st.Mode(), st.ModTime(), mtime(s.Seq))
		}
	}
	// The frame states the original size and carries a checksum.
	b, _ := os.ReadFile(fx.zst(1))
	var h zstd.Header
	if err := h.Decode(b); err != nil || !h.HasFCS || h.FrameContentSize != segSize || !h.HasCheckSum {
		t.Errorf("frame header %+v, %v", h, err)
	}

	// A second run has nothing to do.
	res = run(t, fx.dir, archive.Options{})
	if len(res.Segments) != 0 || res.Plan.Archived != 4 {
		t.Errorf("second run: %d segments, %d archived", len(res.Segments), res.Plan.Archived)
	}
	fx.checkFinal(t)
}

func TestNeverTheNewestSegment(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	// Seal the newest too: it is still left alone.
	img := fx.files[3]
	end := segment.Walk(img, 3, segment.HeaderSize, segment.Live, func(segment.Event) bool { return true })
	segment.PutEnd(img, 3, end, 0)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseTime.UnixNano()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fx.seg(3), img)
	res := run(t, fx.dir, archive.Options{})
	if res.Done != 2 || !exists(fx.seg(3)) || exists(fx.zst(3)) {
		t.Errorf("done %d; newest: original %v archive %v", res.Done, exists(fx.seg(3)), exists(fx.zst(3)))
	}
	if s := res.Plan.Skipped; len(s) != 1 || s[0].Seq != 3 || !strings.Contains(s[0].Reason, "newest") {
		t.Errorf("skipped %+v", s)
	}
}

func TestKeepAndMinAge(t *testing.T) {
	fx := newFixture(t, 8, segSize) // 1..7 sealed, seq sealed at baseTime+seq h
	now := baseTime.Add(7 * time.Hour).Add(30 * time.Minute)
	// --keep 2 keeps 6 and 7; --min-age 3h also keeps 5 (sealed 2.5h ago).
	res := run(t, fx.dir, archive.Options{Keep: 2, MinAge: 3 * time.Hour, Now: now})
	for seq := uint64(1); seq <= 8; seq++ {
		want := seq <= 4
		if exists(fx.zst(seq)) != want || exists(fx.seg(seq)) == want {
			t.Errorf("segment %d: archived %v, want %v", seq, exists(fx.zst(seq)), want)
		}
	}
	reasons := map[uint64]string{}
	for _, s := range res.Plan.Skipped {
		reasons[s.Seq] = s.Reason
	}
	if !strings.Contains(reasons[7], "--keep") || !strings.Contains(reasons[6], "--keep") ||
		!strings.Contains(reasons[5], "--min-age") || !strings.Contains(reasons[8], "newest") {
		t.Errorf("reasons %v", reasons)
	}
	fx.checkSafe(t)
	fx.checkRecords(t)

	// Archives count as sealed segments for --keep: with 1..4 archived and
	// --keep 5, the newest five sealed (3..7) stay as they are.
	res = run(t, fx.dir, archive.Options{Keep: 5, Now: now})
	if res.Done != 0 {
		t.Errorf("--keep 5 compressed %d segments", res.Done)
	}
	res = run(t, fx.dir, archive.Options{Keep: 1, Now: now})
	if res.Done != 2 || !exists(fx.zst(6)) || !exists(fx.seg(7)) {
		t.Errorf("--keep 1: done %d", res.Done)
	}
}

func TestKeepOriginal(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	res := run(t, fx.dir, archive.Options{KeepOriginal: true})
	for seq := uint64(1); seq <= 2; seq++ {
		if !exists(fx.seg(seq)) || !exists(fx.zst(seq)) {
			t.Errorf("segment %d: want both files", seq)
		}
	}
	if res.Done != 2 || res.Segments[0].OriginalRemoved {
		t.Errorf("%+v", res.Segments)
	}
	fx.checkSafe(t)
	fx.checkRecords(t)
	// Again with --keep-original: both kept, the archives not read again
	// (a run's cost must not grow with every archive kept so far), even
	// one that would not verify.
	writeFile(t, fx.zst(2), []byte("not an archive"))
	res = run(t, fx.dir, archive.Options{KeepOriginal: true})
	if res.Done != 0 || len(res.Segments) != 0 || len(res.Plan.Skipped) != 3 || !exists(fx.seg(1)) ||
		!strings.Contains(res.Plan.Skipped[0].Reason, "--keep-original") {
		t.Errorf("segments %+v, skipped %+v", res.Segments, res.Plan.Skipped)
	}
	if b, err := os.ReadFile(fx.zst(2)); err != nil || string(b) != "not an archive" {
		t.Errorf("the kept archive was touched: %q, %v", b, err)
	}
	// Without it, the archives are verified (segment 2's made again)
	// and the originals go.
	run(t, fx.dir, archive.Options{})
	fx.checkFinal(t)
}

func TestDryRunChangesNothing(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	tmp := fx.zst(1) + segment.TempExt
	writeFile(t, tmp, []byte("partial"))
	before, _ := os.ReadDir(fx.dir)
	var planned *archive.Plan
	res := run(t, fx.dir, archive.Options{DryRun: true, Observer: func(ev archive.Event) {
		if ev.Step != archive.StepPlanned {
			t.Errorf("dry run reported %s", ev.Step)
		}
		planned = ev.Plan
	}})
	after, _ := os.ReadDir(fx.dir)
	if len(before) != len(after) || !exists(tmp) {
		t.Fatalf("dry run changed the directory: %v -> %v", before, after)
	}
	p := res.Plan
	if planned != p || len(p.Compress) != 3 || len(p.Temps) != 1 || p.Bytes() != 3*segSize || !res.DryRun || len(res.Segments) != 0 {
		t.Errorf("plan %+v", p)
	}
	fx.checkSafe(t)
}

func TestSkipsUnsealedAndDamaged(t *testing.T) {
	fx := newFixture(t, 6, segSize)
	// 2: a dead writer's segment, never sealed (footer zeroed).
	b := bytes.Clone(fx.files[2])
	clear(b[len(b)-segment.FooterSize:])
	writeFile(t, fx.seg(2), b)
	// 3: a footer whose checksum fails.
	b = bytes.Clone(fx.files[3])
	b[len(b)-10] ^= 0xff
	writeFile(t, fx.seg(3), b)
	// 4: a file longer than its header says.
	writeFile(t, fx.seg(4), append(bytes.Clone(fx.files[4]), 0))
	res := run(t, fx.dir, archive.Options{})
	if res.Done != 2 || !exists(fx.zst(1)) || !exists(fx.zst(5)) {
		t.Errorf("done %d", res.Done)
	}
	want := map[uint64]string{2: "not sealed", 3: "footer damaged", 4: "damaged", 6: "newest"}
	for _, s := range res.Plan.Skipped {
		if !strings.Contains(s.Reason, want[s.Seq]) || want[s.Seq] == "" {
			t.Errorf("segment %d skipped: %s", s.Seq, s.Reason)
		}
		if !exists(s.Path) || exists(fx.zst(s.Seq)) {
			t.Errorf("skipped segment %d was touched", s.Seq)
		}
	}
	if len(res.Plan.Skipped) != 4 {
		t.Errorf("skipped %+v", res.Plan.Skipped)
	}
}

func TestCleansLeftoverTemps(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	good := compressed(t, fx.files[1])
	archiveTmp := fx.zst(1) + segment.TempExt
	writeFile(t, archiveTmp, good[:len(good)/2]) // killed while writing
	writerTmp := filepath.Join(fx.dir, segment.FileName(9)) + segment.TempExt
	writeFile(t, writerTmp, []byte("the writer's; not ours"))
	res := run(t, fx.dir, archive.Options{})
	if !slices.Equal(res.TempsRemoved, []string{archiveTmp}) || exists(archiveTmp) {
		t.Errorf("removed %v", res.TempsRemoved)
	}
	if !exists(writerTmp) {
		t.Error("removed the writer's temp file")
	}
	os.Remove(writerTmp)
	fx.checkFinal(t)
}

func compressed(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func TestResolvesOriginalBesideArchive(t *testing.T) {
	fx := newFixture(t, 5, segSize)
	// 1: complete archive beside the original (killed before the removal).
	writeFile(t, fx.zst(1), compressed(t, fx.files[1]))
	// 2: an archive that does not verify, beside an intact original.
	bad := compressed(t, fx.files[2])
	bad[len(bad)/2] ^= 0x40
	writeFile(t, fx.zst(2), bad)
	// 3: an archive of other bytes beside a damaged original whose digest
	// fails: nobody can tell which is right, so both stay.
	orig3 := bytes.Clone(fx.files[3])
	orig3[segment.HeaderSize+segment.FrameHeaderSize] ^= 1 // a payload byte
	writeFile(t, fx.seg(3), orig3)
	writeFile(t, fx.zst(3), compressed(t, fx.files[3]))
	fx.files[3] = orig3 // what must stay
	// 4: an archive whose content verifies but whose summary (the copy of
	// header and footer after the frame) is damaged: removing the
	// original would leave an archive verify fails.
	sum := segment.AppendSummary(compressed(t, fx.files[4]), fx.files[4])
	sum[len(sum)-100] ^= 0xff
	writeFile(t, fx.zst(4), sum)

	res, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]archive.SegmentResult{}
	for _, s := range res.Segments {
		got[s.Seq] = s
	}
	if got[1].Outcome != archive.Resolved || exists(fx.seg(1)) {
		t.Errorf("segment 1: %+v", got[1])
	}
	if got[2].Outcome != archive.Recompressed || exists(fx.seg(2)) {
		t.Errorf("segment 2: %+v", got[2])
	}
	if got[3].Outcome != archive.Failed || !strings.Contains(got[3].Err.Error(), "fails its digest") ||
		!exists(fx.seg(3)) || !exists(fx.zst(3)) {
		t.Errorf("segment 3: %+v", got[3])
	}
	// The archive named once, first, with the offset where it differs.
	if msg := got[3].Err.Error(); !strings.HasPrefix(msg, fx.zst(3)+": differs from the original at offset ") || strings.Count(msg, fx.zst(3)) != 1 {
		t.Errorf("segment 3: %q; want the archive named once, first, and the first differing offset", msg)
	}
	if got[4].Outcome != archive.Recompressed || exists(fx.seg(4)) || res.Failed != 1 || res.Done != 3 {
		t.Errorf("segment 4: %+v; done %d failed %d", got[4], res.Done, res.Failed)
	}
	if res.Err() == nil || !strings.Contains(res.Err().Error(), fx.zst(3)) {
		t.Errorf("Err() = %v", res.Err())
	}
	fx.checkSafe(t)
}

// An archive that does not decompress to the original is never renamed
// into place, and the original stays: here the temp file is damaged
// between its fsync and the verification.
func TestUnverifiedArchiveNeverReplacesOriginal(t *testing.T) {
	for _, at := range []archive.Step{archive.StepWritten, archive.StepSynced} {
		t.Run(at.String(), func(t *testing.T) {
			fx := newFixture(t, 4, segSize)
			res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
				if ev.Seq == 2 && ev.Step == at {
					tmp := ev.Archive + segment.TempExt
					b, err := os.ReadFile(tmp)
					if err != nil {
						t.Error(err)
						return
					}
					b[len(b)/2] ^= 0x10
					writeFile(t, tmp, b)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != 1 || res.Done != 2 || res.Segments[1].Err == nil {
				t.Fatalf("failed %d done %d: %+v", res.Failed, res.Done, res.Segments)
			}
			if e := res.Segments[1].Err; !errors.Is(e, segment.ErrCorrupt) || !strings.HasPrefix(e.Error(), fx.zst(2)+segment.TempExt+": ") {
				t.Errorf("error %v; want ErrCorrupt, the temporary archive named first", e)
			}
			if !exists(fx.seg(2)) || exists(fx.zst(2)) || exists(fx.zst(2)+segment.TempExt) {
				t.Error("segment 2: want the original only")
			}
			fx.checkSafe(t)
			fx.checkRecords(t)
			run(t, fx.dir, archive.Options{})
			fx.checkFinal(t)
		})
	}
}

// A failure on one segment does not stop the others, and leaves that
// segment's original as it was.
func TestOneFailureDoesNotStopOthers(t *testing.T) {
	fx := newFixture(t, 5, segSize)
	// Something in the way of segment 2's temp file (not ours to remove).
	if err := os.Mkdir(fx.zst(2)+segment.TempExt, 0o750); err != nil {
		t.Fatal(err)
	}
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 3 || res.Failed != 1 || res.Err() == nil || !strings.Contains(res.Err().Error(), fx.zst(2)) {
		t.Errorf("done %d failed %d err %v", res.Done, res.Failed, res.Err())
	}
	if !exists(fx.seg(2)) || exists(fx.zst(2)) {
		t.Error("segment 2: want the original only")
	}
	fx.checkSafe(t)
	fx.checkRecords(t)
}

func TestSecondRunIsRefused(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	started, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		run(t, fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
			if ev.Step == archive.StepStart && ev.Seq == 1 {
				close(started)
				<-release
			}
		}})
	})
	<-started
	_, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if !errors.Is(err, archive.ErrBusy) || !strings.Contains(err.Error(), fx.dir) {
		t.Errorf("second run: %v", err)
	}
	// A dry run only reads: it is allowed.
	if _, err := archive.Run(context.Background(), fx.dir, archive.Options{DryRun: true}); err != nil {
		t.Errorf("dry run beside a run: %v", err)
	}
	close(release)
	wg.Wait()
	fx.checkFinal(t)
}

// TestCancel cancels a run, with a plain cancellation and with a cause
// (context.WithCancelCause, as a service shutting down gives): either way
// the run's error is a cancellation (errors.Is context.Canceled) that
// names the cause.
func TestCancel(t *testing.T) {
	for _, cause := range []error{nil, errors.New("shutting down")} {
		t.Run(fmt.Sprint("cause=", cause), func(t *testing.T) { testCancel(t, cause) })
	}
}

func testCancel(t *testing.T, cause error) {
	fx := newFixture(t, 5, segSize)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	res, err := archive.Run(ctx, fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 2 && ev.Step == archive.StepWritten {
			cancel(cause)
		}
	}})
	if !errors.Is(err, context.Canceled) || cause != nil && !errors.Is(err, cause) {
		t.Fatalf("err = %v", err)
	}
	// Segment 2 stops before its rename; 1 may have been in flight too.
	// No new segment starts after the cancellation. A segment cut short
	// is interrupted, not failed.
	if res.Failed != 0 || res.Interrupted < 1 || res.Done+res.Interrupted > 3 || !exists(fx.seg(2)) || exists(fx.zst(2)) {
		t.Errorf("done %d failed %d interrupted %d", res.Done, res.Failed, res.Interrupted)
	}
	for _, s := range res.Segments {
		if s.Err != nil && (s.Outcome != archive.Interrupted || !errors.Is(s.Err, context.Canceled) || !exists(s.Original) || exists(s.Archive+segment.TempExt)) {
			t.Errorf("segment %d: %s %v", s.Seq, s.Outcome, s.Err)
		}
	}
	fx.checkSafe(t)
	run(t, fx.dir, archive.Options{})
	fx.checkFinal(t)
}

func TestMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	for _, dry := range []bool{false, true} {
		_, err := archive.Run(context.Background(), dir, archive.Options{DryRun: dry})
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Errorf("dry=%v: %v", dry, err)
		}
	}
}

// TestLevelOutOfRangeRefused: a Level the encoder does not know is refused
// before the run touches the directory, naming the level. It failed only
// after the lock, the plan (the Observer told of it) and the removal of an
// interrupted run's temp files, as "zstd encoder: unknown encoder level";
// a dry run or PlanDir passed it.
func TestLevelOutOfRangeRefused(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	tmp := fx.zst(1) + segment.TempExt
	writeFile(t, tmp, []byte("partial"))
	for _, level := range []zstd.EncoderLevel{-1, 5, 99} {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("level %d", level)) {
				t.Errorf("level %d, %s: %v; want os.ErrInvalid naming the level", level, what, err)
			}
		}
		for _, dry := range []bool{false, true} {
			_, err := archive.Run(context.Background(), fx.dir, archive.Options{Level: level, DryRun: dry,
				Observer: func(ev archive.Event) { t.Errorf("level %d: observed %s", level, ev.Step) }})
			check(fmt.Sprintf("dry=%v", dry), err)
		}
		_, err := archive.PlanDir(fx.dir, archive.Options{Level: level})
		check("PlanDir", err)
	}
	if !exists(tmp) {
		t.Error("the leftover temp file was removed")
	}
	fx.checkSafe(t)
}

// Stock zstd decompresses our archives to the original, byte for byte.
func TestZstdCLIReadsArchives(t *testing.T) {
	zstdCLI, err := exec.LookPath("zstd")
	if err != nil && os.Getenv("AUDITSEG_REQUIRE_ZSTD") != "" {
		// CI installs zstd: a skip there would pass with interop unchecked.
		t.Fatal("zstd CLI not installed, and AUDITSEG_REQUIRE_ZSTD is set")
	}
	if err != nil {
		t.Skip("zstd CLI not installed (apt-get install -y zstd); interop not checked")
	}
	fx := newFixture(t, 3, 4*segSize)
	run(t, fx.dir, archive.Options{Level: zstd.SpeedBestCompression})
	for seq := uint64(1); seq <= 2; seq++ {
		if out, err := exec.Command(zstdCLI, "-q", "-t", fx.zst(seq)).CombinedOutput(); err != nil {
			t.Fatalf("zstd -t %s: %v\n%s", fx.zst(seq), err, out)
		}
		out := filepath.Join(t.TempDir(), "out.seg")
		if b, err := exec.Command(zstdCLI, "-q", "-d", "-o", out, fx.zst(seq)).CombinedOutput(); err != nil {
			t.Fatalf("zstd -d: %v\n%s", err, b)
		}
		b, _ := os.ReadFile(out)
		if !bytes.Equal(b, fx.files[seq]) {
			t.Errorf("zstd -d %s differs from the original", fx.zst(seq))
		}
	}
}

// An original that changes while it is archived (it never should: sealed
// segments are immutable) is not removed.
func TestChangedOriginalIsKept(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Seq == 1 && ev.Step == archive.StepDirSynced {
			later := baseTime.Add(time.Hour)
			if err := os.Chtimes(ev.Original, later, later); err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Segments[0].Err == nil || !strings.Contains(res.Segments[0].Err.Error(), "changed while") {
		t.Fatalf("%+v", res.Segments)
	}
	if !exists(fx.seg(1)) || !exists(fx.zst(1)) || exists(fx.seg(2)) {
		t.Error("want segment 1 as original and archive, segment 2 archived")
	}
	fx.checkSafe(t)
}

// An original whose footer is damaged after the plan chose it fails with
// the damage named once: the file, the offset, what is wrong.
func TestFooterDamagedAfterPlanFails(t *testing.T) {
	fx := newFixture(t, 3, segSize)
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{Jobs: 1, Observer: func(ev archive.Event) {
		if ev.Step == archive.StepPlanned {
			f, err := os.OpenFile(fx.seg(1), os.O_WRONLY, 0)
			if err == nil {
				_, err = f.WriteAt([]byte("XX"), segSize-segment.FooterSize)
				f.Close()
			}
			if err != nil {
				t.Error(err)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s: offset %d: bad footer magic", fx.seg(1), segSize-segment.FooterSize)
	if res.Failed != 1 || res.Segments[0].Err == nil || !strings.HasPrefix(res.Segments[0].Err.Error(), want) ||
		strings.Count(res.Segments[0].Err.Error(), fx.seg(1)) != 1 {
		t.Fatalf("failed %d: %+v; want segment 1 failed with %q…", res.Failed, res.Segments, want)
	}
	if !exists(fx.seg(1)) || exists(fx.zst(1)) || !exists(fx.zst(2)) {
		t.Error("want segment 1 as its original only, segment 2 archived")
	}
}

// A leftover temp file that cannot be removed (immutable here) fails its
// own segment, which cannot get a new temp file, and no other: the run
// goes on and is not an error of the run as a whole.
func TestStuckTempFailsOnlyItsSegment(t *testing.T) {
	fx := newFixture(t, 4, segSize)
	tmp := fx.zst(2) + segment.TempExt
	writeFile(t, tmp, []byte("half an archive"))
	if out, err := exec.Command("chattr", "+i", tmp).CombinedOutput(); err != nil {
		t.Skipf("cannot make %s immutable on this file system (chattr: %v: %s)", tmp, err, out)
	}
	defer exec.Command("chattr", "-i", tmp).Run()
	res, err := archive.Run(context.Background(), fx.dir, archive.Options{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.Done != 2 || res.Failed != 1 || len(res.Segments) != 3 {
		t.Fatalf("done %d, failed %d: %+v", res.Done, res.Failed, res.Segments)
	}
	s := res.Segments[1]
	if s.Seq != 2 || s.Outcome != archive.Failed || !strings.Contains(s.Err.Error(), "remove leftover "+tmp) {
		t.Errorf("segment 2: %+v", s)
	}
	if !exists(fx.seg(2)) || exists(fx.zst(2)) || !exists(fx.zst(1)) || !exists(fx.zst(3)) {
		t.Error("wrong files archived")
	}
	fx.checkSafe(t)
}
