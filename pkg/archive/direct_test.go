package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

func hugeBuffer(t *testing.T, n int) []byte {
	t.Helper()
	b, err := segment.AllocHuge(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = segment.Unmap(b) })
	return b
}

// TestWriteArchiveReadBack: whatever the length, and whether or not the
// memory is aligned as direct I/O needs (misaligned, the kernel refuses
// O_DIRECT with EINVAL and the page cache is used instead), the file holds
// exactly the bytes written and readBack returns exactly the file.
func TestWriteArchiveReadBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := hugeBuffer(t, 4<<20)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	back := hugeBuffer(t, 4<<20)
	dir := t.TempDir()
	for _, n := range []int{1, 100, directAlign - 1, directAlign, directAlign + 1, 3*directAlign + 17, 1<<20 + 5} {
		for _, skew := range []int{0, 1} {
			t.Run(fmt.Sprintf("%d/skew%d", n, skew), func(t *testing.T) {
				want := src[skew : skew+n]
				path := filepath.Join(dir, fmt.Sprintf("a%d-%d", n, skew))
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := writeArchive(f, want); err != nil {
					t.Fatalf("writeArchive: %v", err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("file holds %d bytes (err %v), not the %d written", len(got), err, n)
				}
				for _, buf := range [][]byte{back, back[skew:]} {
					got, err := readBack(context.Background(), path, buf)
					if err != nil {
						t.Fatalf("readBack: %v", err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("readBack returned %d bytes that differ from the file's %d", len(got), n)
					}
				}
				if _, err := readBack(context.Background(), path, back[:n]); !errors.Is(err, segment.ErrCorrupt) || !strings.Contains(err.Error(), path) {
					t.Fatalf("readBack of a file larger than the buffer allows: %v, want ErrCorrupt naming the file", err)
				}
			})
		}
	}
}

// TestArchiveBypassesPageCache: where the file system takes O_DIRECT, an
// archive written leaves at most its last partial block in the page cache
// (mincore), and reading it back adds nothing: archives do not push hot
// pages out, and the comparison reads what the device returns.
func TestArchiveBypassesPageCache(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	derr := setDirect(probe, true)
	probe.Close()
	if derr != nil {
		t.Skipf("the file system of %s refuses O_DIRECT (%v): archives go through the page cache there", dir, derr)
	}
	const n = 1<<20 + 100
	src := hugeBuffer(t, 2<<20)
	for i := range n {
		src[i] = byte(i * 7)
	}
	path := filepath.Join(dir, "a")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeArchive(f, src[:n]); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := residentPages(t, f, n); got > 1 {
		t.Fatalf("%d pages of a %d-byte archive in the page cache after writing it, want at most 1 (its last partial block)", got, n)
	}
	if _, err := readBack(context.Background(), path, hugeBuffer(t, 2<<20)); err != nil {
		t.Fatal(err)
	}
	if got := residentPages(t, f, n); got > 1 {
		t.Fatalf("%d pages in the page cache after reading the archive back, want at most 1", got)
	}
}

// residentPages counts the pages of f's first n bytes in the page cache.
// Mapping them does not fault them in; mincore only looks.
func residentPages(t *testing.T, f *os.File, n int) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (n+page-1)/page)
	// x/sys/unix has no wrapper for mincore(2).
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	c := 0
	for _, v := range vec {
		c += int(v & 1)
	}
	return c
}

// A file that holds fewer bytes than its size said when it was opened
// (an archive truncated while it is read back) is the file having
// changed, named first, at the offset that had no data. It was "read
// back PATH at 23: EOF". A sysfs attribute stands in for the truncated
// archive: its size is a page, its content a line.
func TestReadBackShortReadIsAChange(t *testing.T) {
	const path = "/sys/kernel/mm/transparent_hugepage/enabled"
	b, err := os.ReadFile(path)
	st, serr := os.Stat(path)
	if err != nil || serr != nil || int64(len(b)) >= st.Size() {
		t.Skipf("no sysfs file that reads shorter than its size here (%v, %v)", err, serr)
	}
	_, err = readBack(context.Background(), path, hugeBuffer(t, 2<<20))
	var ce *segment.ChangedError
	if !errors.As(err, &ce) || ce.Path != path || ce.Off != int64(len(b)) || !strings.HasPrefix(err.Error(), path+": ") || errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("readBack of a file shorter than its size: %v; want a *segment.ChangedError at offset %d naming the file first", err, len(b))
	}
}
