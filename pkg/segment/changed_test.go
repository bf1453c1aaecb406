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
	want := fmt.Sprintf("%s: changed while it was read (truncated?): no data at offset %d", p, a.headerSize)
	var ce *ChangedError
	var mf *MappingFault
	if err == nil || err.Error() != want || !errors.As(err, &ce) || !errors.As(err, &mf) || errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated archive: %v; want %q, a *ChangedError and *MappingFault, not ErrCorrupt", err, want)
	}
}
