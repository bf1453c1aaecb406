package segment

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// An archive truncated while it is mapped and read costs the error a
// segment file gets (Image.Guard): the file, and the archive file's
// offset that had no data. It used to name no offset. The test cuts the
// file between openArchiveFile's mapping and the first read of a block
// header (checkOneFrame, as readArchive calls it).
func TestArchiveGuardNamesOffset(t *testing.T) {
	content := make([]byte, 256<<10)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(content) // incompressible: the archive spans many pages
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), ArchiveName(testSeq))
	if err := os.WriteFile(p, enc.EncodeAll(content, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := openArchiveFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	err = a.guard(a.checkOneFrame)
	// The read of the first block's header faulted; the data stops at the
	// file's new end, 0.
	want := fmt.Sprintf("%s: changed while it was read (truncated?): no data at offset 0", p)
	var ce *ChangedError
	var mf *MappingFault
	if err == nil || err.Error() != want || !errors.As(err, &ce) || !errors.As(err, &mf) || mf.Off != a.headerSize || errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated archive: %v; want %q, a *ChangedError and a *MappingFault at %d, not ErrCorrupt", err, want, a.headerSize)
	}
}

// TestChangedAtTheFileEnd (review): a read of a mapped file cut inside a
// page faults only from the next page on (the rest of the cut page reads
// as zeros), and the ChangedError named the fault's offset, the page
// boundary, as where data stops. It names the file's new end when that
// comes first: through Image.Guard, and through AppendChecked for a
// payload copied out of the mapping.
func TestChangedAtTheFileEnd(t *testing.T) {
	p := writeSegment(t, t.TempDir(), testSeq, NewImage(testSeq, testSize, 1))
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	ps := int64(os.Getpagesize())
	cut := ps + 100
	if err := os.Truncate(p, cut); err != nil {
		t.Fatal(err)
	}
	var ce *ChangedError
	err = im.Guard(func() { faultSink = im.Data[3*ps] })
	if !errors.As(err, &ce) || ce.Off != cut || ce.Path != p {
		t.Errorf("Guard of a read past a cut inside a page: %v; want a ChangedError naming %s at its new end, %d", err, p, cut)
	}
	const off = HeaderSize
	_, err = AppendChecked(nil, p, "read", 0, off, 0, 0, im.Data[off+FrameHeaderSize:4*ps])
	if !errors.As(err, &ce) || ce.Off != cut || ce.Path != p {
		t.Errorf("AppendChecked of a payload past a cut inside a page: %v; want a ChangedError naming %s at its new end, %d", err, p, cut)
	}
}

// TestChangedAtTheFaultWhenReplaced: a mapped file cut short and then
// replaced by another under its name (a rename over it, as a retention
// job's copy might be) has no new end that can be read at its path: the
// ChangedError of a read that faults names the fault's page, not the size
// of the file now there.
func TestChangedAtTheFaultWhenReplaced(t *testing.T) {
	dir := t.TempDir()
	p := writeSegment(t, dir, testSeq, NewImage(testSeq, testSize, 1))
	im, err := OpenImage(p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	ps := int64(os.Getpagesize())
	if err := os.Truncate(p, ps+100); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, make([]byte, 10), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
	var ce *ChangedError
	err = im.Guard(func() { faultSink = im.Data[3*ps] })
	if !errors.As(err, &ce) || ce.Off != 3*ps || ce.Path != p {
		t.Errorf("Guard of a read of a file cut and replaced: %v; want a ChangedError naming %s at the faulting page, %d", err, p, 3*ps)
	}
}
