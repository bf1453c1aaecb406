package reader_test

import (
	"context"
	"errors"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// Close called from OnDamage (stop at the first damage, as Strict does,
// but from the callback) stops the reader: Next returns false, Wait and
// Err return ErrClosed. It used to release the segment under the decoder
// that was reporting, which then dereferenced it: a nil pointer panic in
// refill, on a log with one torn frame.
func TestCloseFromOnDamage(t *testing.T) {
	for _, wait := range []bool{false, true} {
		dir := t.TempDir()
		all := writeLog(t, dir, 2000, false)
		corruptPayload(t, dir, all[700])
		var r *reader.Reader
		reports := 0
		r, err := reader.Open(dir, reader.Options{Follow: wait, OnDamage: func(reader.Damage) {
			reports++
			if err := r.Close(); err != nil {
				t.Errorf("Close from OnDamage: %v", err)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			for r.Next() {
				if _, err := r.Record().Clone(); err != nil {
					t.Fatal(err)
				}
				n++
			}
			if !wait {
				break
			}
			if err := r.Wait(context.Background()); err != nil {
				if !errors.Is(err, reader.ErrClosed) {
					t.Errorf("Wait after Close from OnDamage: %v", err)
				}
				break
			}
		}
		if n != 700 || reports != 1 || !errors.Is(r.Err(), reader.ErrClosed) {
			t.Errorf("follow %v: %d records (want 700), %d reports, Err %v", wait, n, reports, r.Err())
		}
		if r.Next() {
			t.Error("Next after Close from OnDamage returned a record")
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close again: %v", err)
		}
	}
}
