package crashtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireLoopEnv turns the power-loss test's skip (not root, no loop
// device, no mkfs.ext4, mount refused) into a failure: CI sets it, so a
// power-loss test that could not run is never counted as passed.
const RequireLoopEnv = "AUDITSEG_REQUIRE_LOOP"

// skipLoop skips the test, or fails it where RequireLoopEnv is set.
func skipLoop(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, a...)
	if os.Getenv(RequireLoopEnv) != "" {
		t.Fatalf("%s, and %s is set", msg, RequireLoopEnv)
	}
	t.Skip(msg)
}

// requireLoop checks what the power-loss test needs of the machine.
func requireLoop(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipLoop(t, "not root: the power-loss test attaches loop devices and mounts ext4")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipLoop(t, "%s not found: the power-loss test needs it", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		skipLoop(t, "no loop devices (%v)", err)
	}
	// The model: nothing reaches the device but what the writer flushes,
	// so the kernel's own writeback must not come within a round. It
	// writes back data dirty for longer than dirty_expire_centisecs, or
	// once dirty data exceeds the background threshold. A round dirties
	// at most a few tens of MiB and lasts at most a few seconds. More
	// writeback would make the snapshots weaker (any page may hold later
	// contents after a real power cut too), not the test wrong; but the
	// settings are global, so they are read, not changed.
	expire, err1 := readVM("dirty_expire_centisecs")
	bgBytes, err2 := readVM("dirty_background_bytes")
	bgRatio, err3 := readVM("dirty_background_ratio")
	if err1 != nil || err2 != nil || err3 != nil {
		skipLoop(t, "cannot read /proc/sys/vm: %v %v %v", err1, err2, err3)
	}
	avail := memAvailable()
	bg := bgBytes
	if bg == 0 {
		bg = bgRatio * avail / 100
	}
	if expire < 1000 || bg < 256<<20 {
		skipLoop(t, "vm.dirty_expire_centisecs=%d, vm.dirty_background_bytes=%d, vm.dirty_background_ratio=%d (MemAvailable %d MiB): the kernel would write back within a round (want >= 1000 centisecs and a background threshold >= 256 MiB)",
			expire, bgBytes, bgRatio, avail>>20)
	}
}

func readVM(name string) (int64, error) {
	b, err := os.ReadFile("/proc/sys/vm/" + name)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func memAvailable() int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// mkfsExt4 makes a sparse file of size bytes holding an empty ext4 of
// blocks of block bytes. The inode tables and the journal are zeroed now,
// so that no lazy-init thread writes to the device later, within a round.
func mkfsExt4(t *testing.T, path string, size int64, block int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runTool("mkfs.ext4", "-q", "-F", "-b", strconv.Itoa(block), "-E", "lazy_itable_init=0,lazy_journal_init=0", path); err != nil {
		skipLoop(t, "mkfs.ext4 failed: %v", err)
	}
}

// loopMount is an image file attached to a loop device and mounted.
type loopMount struct {
	image, dev, dir string
	// name is the device's name under /sys/block.
	name string
}

// mountImage attaches image to a free loop device and mounts it on a new
// directory with the options given; t.Cleanup unmounts and detaches it
// (unmount is also exposed as release, to be called earlier). A
// refusal skips the test (fails it under RequireLoopEnv).
func mountImage(t *testing.T, image, opts string) *loopMount {
	t.Helper()
	dev, err := runTool("losetup", "-f", "--show", image)
	if err != nil {
		skipLoop(t, "cannot attach a loop device: %v", err)
	}
	m := &loopMount{image: image, dev: dev, name: filepath.Base(dev), dir: t.TempDir()}
	t.Cleanup(func() { m.detach(t) })
	args := []string{"-t", "ext4"}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	if _, err := runTool("mount", append(args, dev, m.dir)...); err != nil {
		skipLoop(t, "cannot mount ext4 from a loop device: %v", err)
	}
	t.Cleanup(func() { m.unmount(t) })
	return m
}

// mounted reports whether m.dir is a mount point now.
func (m *loopMount) mounted() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == m.dir {
			return true
		}
	}
	return false
}

// unmount unmounts m if it is mounted: umount, and umount -l if that
// fails (a process of a failed test still inside), so that no mount is
// ever left behind.
func (m *loopMount) unmount(t *testing.T) {
	if !m.mounted() {
		return
	}
	if _, err := runTool("umount", m.dir); err != nil {
		t.Errorf("%v; unmounting lazily", err)
		if _, err := runTool("umount", "-l", m.dir); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// detach detaches the loop device (once its mount is gone).
func (m *loopMount) detach(t *testing.T) {
	if m.dev == "" {
		return
	}
	m.unmount(t)
	if _, err := runTool("losetup", "-d", m.dev); err != nil {
		t.Errorf("%v", err)
	}
	m.dev = ""
}

// release unmounts and detaches m now (t.Cleanup will find nothing left).
func (m *loopMount) release(t *testing.T) {
	m.unmount(t)
	m.detach(t)
}

// devStat returns /sys/block/<dev>/stat and whether inflight was "0 0".
func (m *loopMount) devStat() (string, bool, error) {
	in, err := os.ReadFile("/sys/block/" + m.name + "/inflight")
	if err != nil {
		return "", false, err
	}
	st, err := os.ReadFile("/sys/block/" + m.name + "/stat")
	if err != nil {
		return "", false, err
	}
	f := strings.Fields(string(in))
	return strings.TrimSpace(string(st)), len(f) == 2 && f[0] == "0" && f[1] == "0", nil
}

// snapshot copies m's image to dst as a power cut now would leave the
// disk: every write the loop device completed (it writes into the image
// file's page cache, which the copy reads), nothing of the mounted file
// system's own page cache. It reports torn when the device was busy
// before the copy or did any I/O during it: the copy may then hold part
// of a write.
func (m *loopMount) snapshot(t *testing.T, dst string) (torn bool) {
	t.Helper()
	// Writeback a flush started may still be finishing (the writer's
	// sync_file_range starts some without waiting): wait a little for
	// the device to be idle. Later is still a valid instant for the cut,
	// the writer being stopped.
	var before string
	for range 200 {
		st, idle, err := m.devStat()
		if err != nil {
			t.Fatal(err)
		}
		if idle {
			before = st
			break
		}
		time.Sleep(time.Millisecond)
	}
	if before == "" {
		return true
	}
	if _, err := runTool("cp", "--sparse=always", m.image, dst); err != nil {
		t.Fatal(err)
	}
	after, idle, err := m.devStat()
	if err != nil {
		t.Fatal(err)
	}
	return !idle || after != before
}

// cutPower stops process pid (SIGSTOP) writing to m and copies m's
// image to snap as a power cut leaves it: five tries while the device
// does I/O during the copy (each a later instant of the same cut, the
// writer being stopped), then torn. The caller kills the process.
func (m *loopMount) cutPower(t *testing.T, pid int, snap string) (torn bool, tornCopies int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := stopped(pid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if !m.snapshot(t, snap) {
			return false, tornCopies
		}
		tornCopies++
		time.Sleep(20 * time.Millisecond)
	}
	return true, tornCopies
}

// stopped waits until every thread of process pid is stopped (state T):
// a thread inside a system call (an fsync, an msync) stops only when the
// call returns, so from then on the process sends nothing to the device.
func stopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		states, err := threadStates(pid)
		if err != nil {
			return err
		}
		// A zombie (Z) has exited: it sends nothing either.
		if !strings.ContainsFunc(states, func(r rune) bool { return r != 'T' && r != 't' && r != 'Z' }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped after %v: thread states %q", pid, timeout, states)
		}
		time.Sleep(time.Millisecond)
	}
}

func threadStates(pid int) (string, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return "", err
	}
	var states []byte
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // a thread that exited
		}
		// pid (comm) S ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return "", fmt.Errorf("cannot parse /proc/%d/task/%s/stat", pid, task.Name())
		}
		states = append(states, b[i+2])
	}
	return string(states), nil
}

// pdeathKill makes a child die with the test process (a test timeout
// exits without running t.Cleanup): a stopped child left behind would hold
// its mount busy for ever.
func pdeathKill() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
