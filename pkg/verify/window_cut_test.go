package verify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestCutInLastPageIsAChange (review): a sealed segment file cut a few
// bytes short, inside its last page, after verify mapped it reads
// through the mapping (views, the walker, the digest) as zeros from the
// cut on, without a fault: verify reported damage (the footer cut to
// zeros: not sealed, or a footer or digest finding) where the file had
// changed while it was read. After the pass a file now shorter than its
// image is what it reports, as for a fault: unreadable, a ChangedError at
// its new end, and no findings. Through the mapping alone, views, copies
// and the probing window, the digest on the way or ahead.
func TestCutInLastPageIsAChange(t *testing.T) {
	img, _ := windowedImage(t, oneLarge)
	path := filepath.Join(t.TempDir(), segment.FileName(1))
	for _, back := range []int64{50, segment.FooterSize + 8} { // inside the footer; just before it
		cut := int64(windowedFileSize) - back
		for _, spare := range []bool{false, true} {
			for k, mode := range []segment.ReadMode{viewProbe, viewProbe, viewing, copying} {
				alone := k == 0 // the mapping alone: no window
				var buf []byte
				if !alone {
					buf = make([]byte, windowSize)
				}
				o := Options{spareCore: spare}.withDefaults()
				r := checkCutAfterMap(t, path, img, cut, o, buf, mode)
				u := &unit{dir: filepath.Dir(path), whole: true, results: []*result{r}}
				rep := newReport(&o)
				place(context.Background(), u, rep)
				var ce *segment.ChangedError
				if r.rep.State != StateUnreadable || !errors.As(r.ioErr, &ce) || ce.Path != path || ce.Off != cut || len(rep.Findings) != 0 {
					t.Errorf("cut %d bytes short, spare core %v, mode %d (the mapping alone: %v): state %v, error %v; want unreadable, a ChangedError at %d; findings:\n%s",
						back, spare, mode, alone, r.rep.State, r.ioErr, cut, summary(rep))
				}
			}
		}
	}
}

// checkCutAfterMap writes img to path, opens it as checkFile does, with
// buf (nil: read through the mapping alone), cuts the file to cut, and
// checks it through a window in mode: a file cut after verify mapped it.
func checkCutAfterMap(t *testing.T, path string, img []byte, cut int64, o Options, buf []byte, mode segment.ReadMode) *result {
	t.Helper()
	if err := os.WriteFile(path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	o = o.withDefaults()
	im, src, _, err := openImage(path, &o, buf)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	r := newResult(path, &o)
	var w *window
	if src != nil {
		w = &window{buf: buf, src: src, file: src, im: im, mode: mode}
		defer w.close()
	}
	checkGuarded(im, r, &o, w)
	return r
}
