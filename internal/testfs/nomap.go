package testfs

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NoFileMappings makes every mmap(2) of a file in the process fail with
// EACCES from then on, for good (a seccomp filter on all its threads):
// call it in a child process (InChild). Anonymous mappings, all the Go
// runtime makes, are let through. A test that must map nothing of the
// files it reads runs so; where seccomp filters cannot be installed the
// test is skipped.
func NoFileMappings(t testing.TB) {
	t.Helper()
	arch, ok := map[string]uint32{"amd64": unix.AUDIT_ARCH_X86_64, "arm64": unix.AUDIT_ARCH_AARCH64}[runtime.GOARCH]
	if !ok {
		t.Skipf("no seccomp filter written for %s", runtime.GOARCH)
	}
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS // from struct seccomp_data
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ld, K: 4}, // arch
		{Code: jeq, Jf: 5, K: arch},
		{Code: ld, K: 0}, // syscall number
		{Code: jeq, Jf: 3, K: unix.SYS_MMAP},
		{Code: ld, K: 16 + 8*3}, // the flags' low word (little-endian)
		{Code: jset, Jt: 1, K: unix.MAP_ANONYMOUS},
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// no_new_privs and the filter on one thread; TSYNC spreads both.
	runtime.LockOSThread()
	err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	if err == nil {
		_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
			uintptr(unsafe.Pointer(&fprog)))
		if errno != 0 {
			err = errno
		}
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Skipf("cannot install a seccomp filter: %v", err)
	}
	// The filter must be seen to work, or the test proves nothing.
	path := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(path, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if m, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_SHARED); err != unix.EACCES {
		if err == nil {
			unix.Munmap(m)
		}
		t.Fatalf("a file mapping under the filter: %v; want EACCES", err)
	}
}
