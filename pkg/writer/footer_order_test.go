package writer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// footerSteps records, for each segment file under its final name, the
// fsyncs and writes the writer makes to it, each with the state of the
// file's footer when the call began: "zero" (all 128 bytes), "nomagic"
// (the rest written, the magic still zero), "sealed" (a footer that
// decodes), or "other".
type footerSteps struct {
	mu    sync.Mutex
	steps map[string][]string
	errs  []string
}

func newFooterSteps(fs *crashtest.FaultFS) *footerSteps {
	fl := &footerSteps{steps: map[string][]string{}}
	fs.Before = func(c crashtest.Call) {
		if c.Op != crashtest.OpFsync && c.Op != crashtest.OpWrite || strings.HasSuffix(c.Path, segment.TempExt) {
			return
		}
		img, err := os.ReadFile(c.Path)
		var step string
		if err == nil {
			size := int64(len(img))
			step = "fsync"
			if c.Op == crashtest.OpWrite {
				step = fmt.Sprintf("write %d bytes at end-%d", len(c.Write), size-c.Off)
			}
			step += " (" + footerState(img) + ")"
		}
		fl.mu.Lock()
		defer fl.mu.Unlock()
		if err != nil {
			fl.errs = append(fl.errs, err.Error())
			return
		}
		fl.steps[c.Path] = append(fl.steps[c.Path], step)
	}
	return fl
}

func footerState(img []byte) string {
	h, err := segment.DecodeHeader(img)
	if err != nil || int64(len(img)) != h.Size {
		return "other"
	}
	ft := img[h.Size-segment.FooterSize:]
	magic := len(segment.FooterMagic)
	nonZero := func(b byte) bool { return b != 0 }
	switch _, err := segment.DecodeFooter(img, h); {
	case err == nil:
		return "sealed"
	case !slices.ContainsFunc(ft, nonZero):
		return "zero"
	case !slices.ContainsFunc(ft[:magic], nonZero):
		return "nomagic"
	}
	return "other"
}

// sealSteps is what a durable seal does to a segment file: the records
// fsynced while the footer is zero, the footer's bytes after the magic
// written, then the magic, then the fsync that makes the footer durable.
var sealSteps = []string{
	"fsync (zero)",
	fmt.Sprintf("write %d bytes at end-%d (zero)", segment.FooterSize-len(segment.FooterMagic), segment.FooterSize-len(segment.FooterMagic)),
	fmt.Sprintf("write %d bytes at end-%d (nomagic)", len(segment.FooterMagic), segment.FooterSize),
	"fsync (sealed)",
}

func (fl *footerSteps) check(t *testing.T, path string) {
	t.Helper()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, e := range fl.errs {
		t.Errorf("reading a segment at a call: %s", e)
	}
	if got := fl.steps[path]; !slices.Equal(got, sealSteps) {
		t.Errorf("%s: %q; want %q", filepath.Base(path), got, sealSteps)
	}
}

// The durable sealer (SyncInterval, SyncAlways) and recovery write a
// segment's footer through writer.FS (FileWriter): the records are
// fsynced first, the magic is written after the rest of the footer, and
// the footer is fsynced last, so that no kill or power cut leaves a magic
// vouching for a footer or records not written.
func TestFooterMagicWrittenLast(t *testing.T) {
	for _, mode := range []writer.SyncMode{writer.SyncInterval, writer.SyncAlways} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := &crashtest.FaultFS{}
			fl := newFooterSteps(fs)
			dir := t.TempDir()
			w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: mode, FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			appendUntil(t, w, 4)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); seq <= 4; seq++ {
				fl.check(t, filepath.Join(dir, segment.FileName(seq)))
			}
		})
	}
	t.Run("recovery", func(t *testing.T) {
		// A dead SyncNone writer's segment: records, no END, no footer.
		liveDir := t.TempDir()
		live, err := writer.Open(liveDir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if _, err = live.Append(faultPayload(i)); err != nil {
				t.Fatal(err)
			}
		}
		img, err := os.ReadFile(filepath.Join(liveDir, segment.FileName(1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := live.Close(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		path := filepath.Join(dir, segment.FileName(1))
		if err := os.WriteFile(path, img, 0o640); err != nil {
			t.Fatal(err)
		}
		fs := &crashtest.FaultFS{}
		fl := newFooterSteps(fs)
		w, err := writer.Open(dir, writer.Options{SegmentSize: 64 << 10, Sync: writer.SyncNone, FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		if st := w.Recovered(); st.RecoveredSegments != 1 {
			t.Fatalf("recovered %+v, want segment 1 sealed", st)
		}
		fl.check(t, path) // before Close: recovery's steps alone
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
