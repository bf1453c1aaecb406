package writer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/auditseg/auditseg/pkg/segment"
)

// copyReservation copies r as a caller who passes it by value would (go
// vet reports that; the copy is made byte for byte here so that the test
// itself passes vet).
func copyReservation(r *Reservation) *Reservation {
	var c Reservation
	*(*[unsafe.Sizeof(c)]byte)(unsafe.Pointer(&c)) = *(*[unsafe.Sizeof(c)]byte)(unsafe.Pointer(r))
	return &c
}

// TestReservationCopyFinishedTwice: a copy committed, then the original
// aborted (a deferred cleanup, say): the Abort is refused and the record
// stays.
func TestReservationCopyFinishedTwice(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(5)
	if err != nil {
		t.Fatal(err)
	}
	c := copyReservation(&r)
	copy(c.Bytes(), "hello")
	if err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r.Abort(); !errors.Is(err, ErrReservationDone) || !strings.Contains(err.Error(), r.Position().String()) {
		t.Fatalf("Abort of a copy of a committed reservation: %v, want ErrReservationDone naming %v", err, r.Position())
	}
	r2, err := w.Reserve(3)
	if err != nil {
		t.Fatal(err)
	}
	c2 := copyReservation(&r2)
	if err := r2.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Commit(); !errors.Is(err, ErrReservationDone) {
		t.Fatalf("Commit of a copy of an aborted reservation: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, dir); len(got) != 1 || string(got[r.Position()]) != "hello" {
		t.Fatalf("got %q", got)
	}
}

// TestReservationCopyAfterSeal: the same once the segment is sealed and
// unmapped. The stale Abort once wrote into whatever was mapped at that
// address by then: another segment's record.
func TestReservationCopyAfterSeal(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(8)
	if err != nil {
		t.Fatal(err)
	}
	c := copyReservation(&r)
	copy(r.Bytes(), "12345678")
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		p, err := w.Append(record(0, i))
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq > 2 {
			break
		}
	}
	first := filepath.Join(dir, segment.FileName(1))
	deadline := time.Now().Add(10 * time.Second)
	for r.s.gone.Load() == false {
		if time.Now().After(deadline) {
			t.Fatalf("%s not sealed", first)
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Abort(); !errors.Is(err, ErrReservationDone) {
		t.Fatalf("Abort of a copy after the seal: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, dir); string(got[r.Position()]) != "12345678" {
		t.Fatalf("record at %v: %q", r.Position(), got[r.Position()])
	}
}

// TestAbortAfterCloseTimeout: like Commit, Abort does not write into a
// segment Close gave up on: the directory is released.
func TestAbortAfterCloseTimeout(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, ErrReservationsOpen) {
		t.Fatalf("close with an open reservation: %v", err)
	}
	if err := r.Abort(); !errors.Is(err, ErrClosed) {
		t.Fatalf("abort after close: %v", err)
	}
	if f := frameInFile(t, &r); f.State != segment.Reserved {
		t.Fatalf("frame after a refused abort: %v", f.State)
	}
}

func TestReserveNegative(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Reserve(-1); err == nil || !strings.Contains(err.Error(), "negative") || !errors.Is(err, os.ErrInvalid) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("Reserve(-1): %v", err)
	}
}

// The zero Reservation a failed Reserve returns answers every method
// without a panic: no space, no position, and Commit and Abort refused.
func TestFailedReserveReservation(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := w.Reserve(1 << 20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Reserve(1 MiB): %v", err)
	}
	if r.Bytes() != nil || r.Position() != (Position{}) {
		t.Fatalf("failed reservation: %d bytes at %v", len(r.Bytes()), r.Position())
	}
	if err := r.Commit(); !errors.Is(err, ErrReservationDone) {
		t.Fatalf("Commit: %v", err)
	}
	if err := r.Abort(); !errors.Is(err, ErrReservationDone) {
		t.Fatalf("Abort: %v", err)
	}
}

// frameInFile decodes r's frame from its segment file, not the mapping.
func frameInFile(t *testing.T, r *Reservation) segment.Frame {
	t.Helper()
	b, err := os.ReadFile(r.s.path)
	if err != nil {
		t.Fatal(err)
	}
	return segment.DecodeFrame(b, r.s.seq, r.off)
}

// TestSegmentFilesCarryTheirNames: the file the writer keeps for each
// segment it created is called by the segment's name, not by the .tmp
// name it was created under: that is the name errors about it (mapping,
// footer write, writeback) give.
func TestSegmentFilesCarryTheirNames(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := make([]byte, 1000)
	for seen := 0; seen < 3; {
		s := w.cur.Load()
		if s.f.Name() != s.path {
			t.Fatalf("segment %d: file named %s, want %s", s.seq, s.f.Name(), s.path)
		}
		for w.cur.Load() == s {
			if _, err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
		seen++
	}
}

// TestNextSegmentPreparedBeforeFirstRotation: after Open, the segment
// after the active one is prepared once appends are under way, before the
// active one fills: the first rotation is a pointer swap like the others,
// not a wait for a whole creation (the preparer used to be woken only by
// rotations).
func TestNextSegmentPreparedBeforeFirstRotation(t *testing.T) {
	for _, size := range []int64{64 << 10, 4 << 20} {
		w, err := Open(t.TempDir(), Options{SegmentSize: size, Sync: SyncNone})
		if err != nil {
			t.Fatal(err)
		}
		s := w.cur.Load()
		rec := make([]byte, 1000)
		for s.tail.Load() < size/2 {
			if _, err := w.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for s.next.Load() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if w.cur.Load() != s {
			t.Fatalf("%d-byte segments: rotated already", size)
		}
		if s.next.Load() == nil {
			t.Errorf("%d-byte segments: half of segment %d written, no next segment prepared after 10 s", size, s.seq)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// ErrReservationDone says what happened to the Reservation: the same one
// finished twice was reported as "a copy of this Reservation was
// finished?", and the zero one a failed Reserve returns as "already
// committed or aborted", sending a caller looking for a copy, or a
// commit, that was never made.
func TestReservationDoneSaysWhy(t *testing.T) {
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := w.Reserve(4)
	if err != nil {
		t.Fatal(err)
	}
	c := copyReservation(&r)
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{"Commit again": r.Commit(), "Abort after Commit": r.Abort()} {
		if !errors.Is(err, ErrReservationDone) || strings.Contains(err.Error(), "copy") ||
			!strings.Contains(err.Error(), "called on it before") || !strings.Contains(err.Error(), r.Position().String()) {
			t.Errorf("%s: %v", what, err)
		}
	}
	if err := c.Abort(); !errors.Is(err, ErrReservationDone) || !strings.Contains(err.Error(), "a copy of this Reservation") {
		t.Errorf("Abort of a copy: %v", err)
	}
	z, err := w.Reserve(-1)
	if err == nil {
		t.Fatal("Reserve(-1) succeeded")
	}
	if err := z.Commit(); !errors.Is(err, ErrReservationDone) || !strings.Contains(err.Error(), "Reserve failed") {
		t.Errorf("Commit of a failed Reserve's Reservation: %v", err)
	}
}

// TestBytesAfterFinishIsNil: a Reservation's Bytes asked for after its
// Commit once gave the committed record's payload, and a store through it
// (a buffer filled again for the next record, say) changed the record
// behind its CRC: verify reported it torn (exit 1). After Abort it gave
// the padding. Both now give nil, as the zero Reservation's does.
func TestBytesAfterFinishIsNil(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.Reserve(10)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Bytes(), "0123456789")
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if b := r.Bytes(); b != nil {
		copy(b, "XXXXXXXXXX")
		t.Errorf("Bytes after Commit: %d bytes of the committed record, want nil", len(b))
	}
	a, err := w.Reserve(10)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Abort(); err != nil {
		t.Fatal(err)
	}
	if b := a.Bytes(); b != nil {
		t.Errorf("Bytes after Abort: %d bytes of the padding, want nil", len(b))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, dir); len(got) != 1 || string(got[r.Position()]) != "0123456789" {
		t.Fatalf("got %q, want the record as committed", got)
	}
}
