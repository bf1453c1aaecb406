package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// recordingWriterAt keeps the writes made through it, in order; the one
// numbered fail (from 1) fails, as a pwrite of the file at path would.
type recordingWriterAt struct {
	path   string
	fail   int
	writes []recordedWrite
}

type recordedWrite struct {
	off int64
	b   []byte
}

func (r *recordingWriterAt) WriteAt(b []byte, off int64) (int, error) {
	if len(r.writes)+1 == r.fail {
		return 0, &fs.PathError{Op: "write", Path: r.path, Err: syscall.ENOSPC}
	}
	r.writes = append(r.writes, recordedWrite{off, bytes.Clone(b)})
	return len(b), nil
}

// TestWriteFooterStoresMagicLast: replayed in order onto a zeroed footer,
// WriteFooter's writes leave a segment that is not sealed after every
// prefix of them, never one whose footer reads as damaged, and the
// footer once all are replayed. The magic is the last write, alone; the
// writes before it are also cut anywhere (what a reader racing a pwrite
// may see). The magic's own 8-byte write is not: nothing promises that
// a reader racing it sees all of it or none (see WriteFooter).
func TestWriteFooterStoresMagicLast(t *testing.T) {
	want := testFooter()
	h := Header{Seq: testSeq, Size: testSize}
	at := testSize - FooterSize
	rec := &recordingWriterAt{path: "seg"}
	if err := WriteFooter(rec, rec.path, at, want); err != nil {
		t.Fatal(err)
	}
	n := len(rec.writes)
	if n < 2 {
		t.Fatalf("%d writes: want the magic written apart, last", n)
	}
	if last := rec.writes[n-1]; last.off != at || string(last.b) != FooterMagic {
		t.Fatalf("last write: %q at %d, want the magic alone at %d", last.b, last.off, at)
	}
	for i, w := range rec.writes[:n-1] {
		if w.off < at+int64(len(FooterMagic)) || w.off+int64(len(w.b)) > testSize {
			t.Fatalf("write %d covers [%d, %d): outside the footer after its magic [%d, %d)", i, w.off, w.off+int64(len(w.b)), at+8, testSize)
		}
	}
	var footer [FooterSize]byte
	for i, w := range rec.writes {
		cuts := len(w.b)
		if i == n-1 {
			cuts = 0 // the magic: nothing of it, then all of it (below)
		}
		for cut := range cuts + 1 {
			torn := footer
			copy(torn[w.off-at:], w.b[:cut])
			if _, err := decodeFooterAt(torn[:], h); !errors.Is(err, ErrNoFooter) {
				t.Fatalf("writes before %d, and %d bytes of it: %v, want ErrNoFooter", i, cut, err)
			}
		}
		copy(footer[w.off-at:], w.b)
	}
	if got, err := decodeFooterAt(footer[:], h); err != nil || got != want {
		t.Fatalf("all writes: %+v, %v; want %+v", got, err, want)
	}
}

// TestWriteFooterErrorNamesFileAndOffset: a failed write is reported
// with the file, once, and the offset of the write that failed; the
// magic is not written after a failed body.
func TestWriteFooterErrorNamesFileAndOffset(t *testing.T) {
	const path = "/log/00000000000000000007.seg"
	at := testSize - FooterSize
	for fail, off := range map[int]int64{1: at + 8, 2: at} {
		rec := &recordingWriterAt{path: path, fail: fail}
		err := WriteFooter(rec, path, at, testFooter())
		what := "write footer"
		if fail == 2 {
			what = "write footer magic"
		}
		if want := fmt.Sprintf("%s: %s at offset %d: %v", path, what, off, syscall.ENOSPC); err == nil || err.Error() != want {
			t.Errorf("write %d failing: %v, want %q", fail, err, want)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("write %d failing: %v does not wrap the cause", fail, err)
		}
		if len(rec.writes) != fail-1 {
			t.Errorf("write %d failing: %d writes made, want %d", fail, len(rec.writes), fail-1)
		}
	}
}
