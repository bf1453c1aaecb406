package reader_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// TestOpenContextEndsLeaseWait (review): a segment another process holds
// a write lease on (a file server's) is opened once the lease's break has
// been waited for, up to lease-break-time and a second (46 s by default),
// and nothing ended that wait: a tail told to stop sat in it. With the
// reader's context cancelled, Next returns false at once, after the
// records before that segment, and Err wraps the cancellation and the
// open's EWOULDBLOCK; the segment is not reported as damage. So too
// with a context cancelled with a cause of its own (context.Cause), which
// the open's error wrapped instead of the cancellation: the segment was
// reported as damage, and Err did not wrap context.Canceled.
func TestOpenContextEndsLeaseWait(t *testing.T) {
	for _, cause := range []error{nil, errors.New("shutting down")} {
		t.Run(fmt.Sprintf("cause %v", cause), func(t *testing.T) { openContextEndsLeaseWait(t, cause) })
	}
}

func openContextEndsLeaseWait(t *testing.T, cause error) {
	dir := t.TempDir()
	want := firstSegment(t, writeLog(t, dir, 3000, true))
	broken, giveUp := testfs.TakeLease(t, filepath.Join(dir, segment.FileName(2)), unix.F_WRLCK)
	ctx, cancelCause := context.WithCancelCause(context.Background())
	cancel := func() { cancelCause(cause) }
	defer cancel()
	r, dmg := openCollecting(t, ctx, dir)
	defer r.Close()
	read := testfs.BrokenFirst(t, broken, func() []rec {
		var out []rec
		for r.Next() {
			x := r.Record()
			out = append(out, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
		}
		return out
	}, func(got []rec) string {
		return fmt.Sprintf("the reader stopped (%d records, %v) while the lease was held, before it was cancelled", len(got), r.Err())
	})
	cancel()
	got := read() // the lease is still held: only the cancellation ends the wait
	giveUp()
	if err := r.Err(); !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) || !errors.Is(err, context.Cause(ctx)) {
		t.Fatalf("reader cancelled during a lease's break: Err = %v; want one wrapping context.Canceled, the cause and EWOULDBLOCK", err)
	}
	t.Log(r.Err())
	sameRecs(t, got, want)
	if len(*dmg) != 0 {
		t.Errorf("damage reported: %v", *dmg)
	}
}

// firstSegment checks that the log whose records are all spans three
// segments or more, and returns segment 1's records: what a reader that
// stops in segment 2 reads.
func firstSegment(t *testing.T, all []rec) []rec {
	t.Helper()
	if all[len(all)-1].pos.Seq < 3 {
		t.Fatalf("the fixture has %d segments, want 3 or more", all[len(all)-1].pos.Seq)
	}
	var want []rec
	for _, x := range all {
		if x.pos.Seq == 1 {
			want = append(want, x)
		}
	}
	return want
}

// openCollecting opens the log in dir under ctx, its damage reports
// collected in dmg.
func openCollecting(t *testing.T, ctx context.Context, dir string) (r *reader.Reader, dmg *[]reader.Damage) {
	t.Helper()
	dmg = new([]reader.Damage)
	r, err := reader.OpenContext(ctx, dir, reader.Options{OnDamage: func(d reader.Damage) { *dmg = append(*dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	return r, dmg
}

// TestOpenContextEndsLockLeaseWait (review): at the end of what is
// written the reader asks LOCK whether a writer may still add to the log,
// and under another process's write lease on LOCK that open waited for the
// lease's break without the reader's context (segment.WriterInfo). With
// the context cancelled the reader stops while the lease is held, Err
// wrapping the cancellation.
func TestOpenContextEndsLockLeaseWait(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 300, true)
	lock := filepath.Join(dir, segment.LockName)
	if err := os.WriteFile(lock, nil, 0o640); err != nil { // a writer gone
		t.Fatal(err)
	}
	var n int
	err := testfs.CancelInLeaseWait(t, lock, func(ctx context.Context) error {
		r, err := reader.OpenContext(ctx, dir, reader.Options{})
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			n++
		}
		return r.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("reader cancelled in LOCK's lease wait after %d records: %v; want an error wrapping context.Canceled", n, err)
	}
}

// TestSalvageOpenEndsLeaseWait (review): an archive that does not decode
// is opened a second time to read what decodes of it
// (segment.OpenSalvaged), and that open waited for a lease's break under
// context.Background: a lease taken on the archive between its two opens
// (here: after the prefetch decoded it, while segment 1 is read) held a
// cancelled reader there for up to lease-break-time, and then the archive
// was reported as damage and read on. Cancelled in that wait, the reader
// stops after segment 1's records, Err wrapping the cancellation and the
// open's EWOULDBLOCK, and reports no damage: the archive was not read.
func TestSalvageOpenEndsLeaseWait(t *testing.T) {
	dir := t.TempDir()
	want := firstSegment(t, writeLogSize(t, dir, 1<<20, 50000, true, payload))
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(2)))
	if err != nil {
		t.Fatal(err)
	}
	archiveSegment(t, dir, 2, data)
	p := filepath.Join(dir, segment.ArchiveName(2))
	z, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	blockDamage(t, p, z)

	opens := testfs.CountOpens(t, dir)
	closed := testfs.AwaitClose(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, dmg := openCollecting(t, ctx, dir)
	defer r.Close()
	var got []rec
	read := func() {
		x := r.Record()
		got = append(got, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
	}
	// Segment 1 is sealed: opening it starts the prefetch of the archive,
	// whose decoding fails; the reader, not called, waits in segment 1.
	if !r.Next() {
		t.Fatalf("no first record: %v", r.Err())
	}
	read()
	closed()
	if n := opens.Take(t)[segment.ArchiveName(2)]; n != 1 {
		t.Fatalf("%s opened %d times before the lease, want once (the prefetch)", p, n)
	}
	err = testfs.CancelInLeaseWait(t, p, func(lctx context.Context) error {
		defer context.AfterFunc(lctx, cancel)()
		for r.Next() {
			read()
		}
		return r.Err()
	})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("reader cancelled in the salvage open's lease wait: Err = %v; want one wrapping context.Canceled and EWOULDBLOCK", err)
	}
	t.Log(err)
	sameRecs(t, got, want)
	if len(*dmg) != 0 {
		t.Errorf("damage reported: %v", *dmg)
	}
}
