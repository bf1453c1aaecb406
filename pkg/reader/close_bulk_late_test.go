package reader_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// TestNoCallbackAfterCloseInBulkWait: a Close from another goroutine
// that returns while a follower's Wait is formatting a bulk run, before
// its first Write, is the last the user hears of the reader: neither
// Write nor OnDamage is called after it (the run's first range ends in
// a Write, or, with its first frame damaged, starts with a report), and
// Wait returns ErrClosed.
func TestNoCallbackAfterCloseInBulkWait(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprint("damaged=", damaged), func(t *testing.T) {
			dir := t.TempDir()
			var damage func(string, []rec)
			if damaged {
				damage = func(src string, all []rec) {
					for _, x := range all {
						if x.pos.Seq == 2 { // its first record: a payload byte
							patch(t, src, 2, x.pos.Offset+segment.FrameHeaderSize, []byte{0xff})
							return
						}
					}
				}
			}
			rest := splitLog(t, dir, damage)
			var (
				inWait, closed atomic.Bool
				late           atomic.Int32 // callbacks after Close returned
				once           sync.Once
			)
			entered, release := make(chan struct{}), make(chan struct{})
			r, err := reader.Open(dir, reader.Options{Follow: true,
				OnDamage: func(reader.Damage) {
					if closed.Load() {
						late.Add(1)
					}
				},
				Bulk: &reader.Bulk{Range: 4096, Workers: 1,
					Append: func(dst []byte, pos reader.Position, ts int64, p []byte) []byte {
						if inWait.Load() {
							once.Do(func() { close(entered); <-release })
						}
						return lineOf(dst, pos, ts, p)
					},
					Write: func([]byte, reader.Position) error {
						if closed.Load() {
							late.Add(1)
						}
						return nil
					}}})
			if err != nil {
				t.Fatal(err)
			}
			done := waitInBulk(t, r, func() { inWait.Store(true) }, rest, entered)
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			closed.Store(true)
			close(release)
			wantClosed(t, done)
			if n := late.Load(); n != 0 {
				t.Fatalf("%d callbacks after Close returned", n)
			}
		})
	}
}
