package segment

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeAlign is the x86-64 PMD size: a mapping aligned to it can map the
// page cache's 2 MiB folios with one page-table entry each.
const hugeAlign = 2 << 20

// MapFile maps the first size bytes of f, shared, at a 2 MiB-aligned
// address with MADV_HUGEPAGE. On the VMs we run on, the first user access
// to each 4 KiB page of a fresh mapping costs ~5 µs (the hypervisor builds
// its own entry for every guest page-table entry; measured: 66 ms to touch a
// pre-populated 64 MiB mapping, 1 ms when it is huge-page mapped). ext4 and
// tmpfs back such a mapping with 2 MiB folios, so a segment costs 32 entries
// instead of 16384. Where the kernel or file system declines, the mapping
// simply uses 4 KiB pages. mmap-go cannot place a mapping, hence x/sys.
func MapFile(f *os.File, size int64, writable bool) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("map %s: size %d", f.Name(), size)
	}
	page := int64(os.Getpagesize())
	span := (size + page - 1) &^ (page - 1)
	// Reserve span+2 MiB of address space, place the file at the first
	// aligned address inside it, and give back the rest.
	res, err := unix.Mmap(-1, 0, int(span+hugeAlign), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("map %s: reserve address space: %w", f.Name(), err)
	}
	base := unsafe.Pointer(unsafe.SliceData(res))
	head := uintptr((hugeAlign - uintptr(base)%hugeAlign) % hugeAlign)
	at := unsafe.Add(base, head)
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	p, err := unix.MmapPtr(int(f.Fd()), 0, at, uintptr(size), prot, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		_ = unix.MunmapPtr(base, uintptr(span+hugeAlign))
		return nil, fmt.Errorf("map %s: %w", f.Name(), err)
	}
	if head > 0 {
		_ = unix.MunmapPtr(base, head)
	}
	if tail := uintptr(hugeAlign) - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(at, span), tail)
	}
	m := unsafe.Slice((*byte)(p), size)
	_ = unix.Madvise(m, unix.MADV_HUGEPAGE) // an optimisation only
	return m, nil
}

// Unmap releases a mapping made by MapFile.
func Unmap(m []byte) error {
	if len(m) == 0 {
		return nil
	}
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(m)), uintptr(len(m)))
}
