package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
			dir, src := t.TempDir(), t.TempDir()
			all := writeLogWith(t, src, 3000, true, mixedPayload)
			last := all[len(all)-1].pos.Seq
			if damaged {
				for _, x := range all {
					if x.pos.Seq == 2 { // its first record: a payload byte
						patch(t, src, 2, x.pos.Offset+segment.FrameHeaderSize, []byte{0xff})
						break
					}
				}
			}
			move := func(seq uint64) {
				if err := os.Rename(filepath.Join(src, segment.FileName(seq)), filepath.Join(dir, segment.FileName(seq))); err != nil {
					t.Fatal(err)
				}
			}
			move(1)
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
			for r.Next() {
			}
			if r.Err() != nil {
				t.Fatal(r.Err())
			}
			inWait.Store(true)
			done := make(chan error, 1)
			go func() { done <- r.Wait(context.Background()) }()
			for seq := last; seq >= 2; seq-- {
				move(seq)
			}
			select {
			case <-entered:
			case <-time.After(guard):
				t.Fatal("Wait did not read the new segments in bulk")
			}
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			closed.Store(true)
			close(release)
			select {
			case err := <-done:
				if !errors.Is(err, reader.ErrClosed) {
					t.Fatalf("Wait = %v, want ErrClosed", err)
				}
			case <-time.After(guard):
				t.Fatal("Wait did not return after Close")
			}
			if n := late.Load(); n != 0 {
				t.Fatalf("%d callbacks after Close returned", n)
			}
		})
	}
}
