package segment

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An image of a file shorter than its header says is a copy padded in
// memory: it keeps no inode, so a file made at the name after the short
// one was removed may have its inode number. Maps took that file for the
// one the image was read from (a follower then stayed on the copy's
// zeros while a writer appended to the new file). The new file has the
// header's size, the copied one had less: the same inode with another
// size is not the file copied. A mapped image keeps its inode, and with
// it its answer.
func TestMapsACopyOnlyWhileTheSizeAgrees(t *testing.T) {
	dir := t.TempDir()
	const size = MinSegmentSize
	path := filepath.Join(dir, FileName(3))
	full := NewImage(3, size, time.Now().UnixNano())
	if err := os.WriteFile(path, full[:8192], 0o640); err != nil {
		t.Fatal(err)
	}
	short, err := OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	if int64(len(short.Data)) != size {
		t.Fatalf("image of a cut file is %d bytes, want the header's %d", len(short.Data), size)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !short.Maps(fi) {
		t.Fatal("Maps false for the file the copy was read from")
	}
	// The same inode at the header's size stands for a file made again
	// with the removed one's number.
	if err := os.WriteFile(path, full, 0o640); err != nil {
		t.Fatal(err)
	}
	if fi, err = os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	if short.Maps(fi) {
		t.Fatal("Maps true for a file of another size at the inode the copy was read from")
	}
	mapped, err := OpenImage(path)
	if err != nil {
		t.Fatal(err)
	}
	defer mapped.Close()
	if !mapped.Maps(fi) {
		t.Fatal("Maps false for the mapped file")
	}
}
