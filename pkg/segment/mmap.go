package segment

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeAlign is the x86-64 PMD size: a mapping aligned to it can map the
// page cache's 2 MiB folios with one page-table entry each.
const hugeAlign = 2 << 20

// MapFile maps the first size bytes of f, shared, at a 2 MiB-aligned
// address, with MADV_HUGEPAGE if huge. On the VMs we run on, the first user access
// to each 4 KiB page of a fresh mapping costs ~5 µs (the hypervisor builds
// its own entry for every guest page-table entry; measured: 66 ms to touch a
// pre-populated 64 MiB mapping, 1 ms when it is huge-page mapped). ext4 and
// tmpfs back such a mapping with 2 MiB folios, so a segment costs 32 entries
// instead of 16384. Where the kernel or file system declines, the mapping
// simply uses 4 KiB pages. mmap-go cannot place a mapping, hence x/sys.
//
// The price of 2 MiB folios is paid by whoever flushes a writable mapping:
// the kernel keeps a folio's dirtiness as a whole, so a flush after a store
// writes all 2 MiB of the folio it hit. A writer that flushes after every
// few records maps with huge false (pkg/writer/pages.go), and readers map
// only sealed files with huge true (looksSealed), since theirs can set the
// page size of a file a writer is about to fill.
func MapFile(f *os.File, size int64, writable, huge bool) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("map %s: size %d", f.Name(), size)
	}
	at, span, err := reserveAligned(size, unix.PROT_NONE)
	if err != nil {
		return nil, FileError(f.Name(), "map: reserve address space", err)
	}
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	p, err := unix.MmapPtr(int(f.Fd()), 0, at, uintptr(size), prot, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		_ = unix.MunmapPtr(at, span)
		return nil, FileError(f.Name(), "map", err)
	}
	m := unsafe.Slice((*byte)(p), size)
	if huge {
		_ = unix.Madvise(m, unix.MADV_HUGEPAGE) // an optimisation only
	}
	return m, nil
}

// AllocHuge returns size bytes of zeroed private anonymous memory, 2 MiB
// aligned with MADV_HUGEPAGE, outside the Go heap; release it with Unmap.
// It is for segment-sized memory (compress-finished's output buffers, the
// bulk reader's output buffers, an archive's decompressed image): a 64 MiB
// heap buffer costs ~250 ms of
// first-touch faults here (16384 4 KiB pages, each one also a hypervisor
// entry), a huge-page one ~5 ms. The memory is committed only as it is
// touched.
func AllocHuge(size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("allocate %d bytes: bad size", size)
	}
	at, _, err := reserveAligned(int64(size), unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return nil, fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	m := unsafe.Slice((*byte)(at), size)
	_ = unix.Madvise(m, unix.MADV_HUGEPAGE) // an optimisation only
	return m, nil
}

// reserveAligned maps span (size rounded up to pages) bytes of anonymous
// private memory with prot at a 2 MiB-aligned address: it reserves
// span+2 MiB, keeps the first aligned span inside it and gives back the
// rest. mmap(2) cannot be asked for an alignment, hence the detour.
func reserveAligned(size int64, prot int) (unsafe.Pointer, uintptr, error) {
	page := uintptr(os.Getpagesize())
	span := (uintptr(size) + page - 1) &^ (page - 1)
	res, err := unix.Mmap(-1, 0, int(span+hugeAlign), prot, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, 0, err
	}
	base := unsafe.Pointer(unsafe.SliceData(res))
	head := (hugeAlign - uintptr(base)%hugeAlign) % hugeAlign
	at := unsafe.Add(base, head)
	if head > 0 {
		_ = unix.MunmapPtr(base, head)
	}
	if tail := uintptr(hugeAlign) - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(at, span), tail)
	}
	return at, span, nil
}

// Detach replaces the mapping m with private anonymous memory at the same
// address, in one step: the addresses stay valid, so code still holding a
// slice of m cannot fault, but its writes no longer reach the file. The
// memory stays allocated (release it with Unmap, once nothing can touch
// it).
func Detach(m []byte) error {
	if len(m) == 0 {
		return nil
	}
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(unsafe.SliceData(m)), uintptr(len(m)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
	return err
}

// Unmap releases a mapping made by MapFile or AllocHuge.
func Unmap(m []byte) error {
	if len(m) == 0 {
		return nil
	}
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(m)), uintptr(len(m)))
}

// A MappingFault is a memory fault inside a mapping, which is what
// touching the pages of a mapped file that shrank raises (SIGBUS). Its
// message is the runtime's, which says "nil pointer dereference": callers
// say what happened in their own words, with Off. The writer also makes
// one of the EFAULT that madvise(MADV_POPULATE_WRITE) returns instead of
// raising SIGBUS on such pages.
type MappingFault struct {
	Off int64 // the faulting address's offset in the mapping
	Err error // the runtime's error (or the madvise's)
}

func (e *MappingFault) Error() string { return e.Err.Error() }
func (e *MappingFault) Unwrap() error { return e.Err }

// Guard runs fn, which reads the mapping m, and returns a *MappingFault
// instead of crashing when a read faults inside m: a file truncated by
// someone else while it is mapped must cost its reader an error, not the
// process. Any other fault, a nil pointer included, is a bug: Guard
// panics again with it.
func Guard(m []byte, fn func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = Fault(m, p)
		}
	}()
	fn()
	return nil
}

// Fault returns r, a value recovered from a panic under
// debug.SetPanicOnFault, as a *MappingFault if it is a memory fault
// inside m. Anything else is a bug, not a file that changed: Fault panics
// again with it. It is Guard's end, for callers that cannot afford
// Guard's closure on their hot path (the writer's appenders) and recover
// themselves.
func Fault(m []byte, r any) *MappingFault {
	off, ok := faultOffset(r, m)
	if !ok {
		panic(r)
	}
	return &MappingFault{Off: off, Err: r.(error)}
}

// faultOffset reports whether r, a value recovered from a panic under
// debug.SetPanicOnFault, is a memory fault inside m, and at which offset.
func faultOffset(r any, m []byte) (int64, bool) {
	if _, ok := r.(runtime.Error); !ok || len(m) == 0 {
		return 0, false
	}
	f, ok := r.(interface{ Addr() uintptr })
	if !ok {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(&m[0]))
	if f.Addr() < base || f.Addr()-base >= uintptr(len(m)) {
		return 0, false
	}
	return int64(f.Addr() - base), true
}
