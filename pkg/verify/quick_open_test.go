package verify

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// --quick reads a sealed segment's header, footer and END frame only
// (with pread: TestQuickReadsOnlyHeadersAndFooters); it opened each sealed
// segment file twice, the second time for a window it never read
// through. The opens are counted with inotify,
// an IN_OPEN event per open(2) of a file in the directory. The kernel
// merges an event into the last one queued if they are the same, and
// two opens in a row are (no close comes between: the mapping holds the
// first open file): so each file is watched as well, and every open
// queues the directory's event and then the file's, never the same as
// the last. A segment not sealed is opened once too: the window reading
// its zero tail reads the file its image maps (TestFullOpensSegmentsOnce).
func TestQuickOpensSealedSegmentsOnce(t *testing.T) {
	l := newTestLog(t)
	l.sealed(3)
	l.sealed(4)
	l.open(2, false)
	ino, wd := watchOpens(t, l.dir, 3)
	rep := mustDir(t, l.dir, Options{Quick: true, Workers: 1})
	if rep.Totals.Sealed != 2 || rep.Totals.Segments != 3 {
		t.Fatalf("%d segments, %d sealed; want 3, 2 sealed\n%s", rep.Totals.Segments, rep.Totals.Sealed, summary(rep))
	}
	opens := inotifyOpens(t, ino, wd)
	want := map[string]int{segment.FileName(1): 1, segment.FileName(2): 1, segment.FileName(3): 1}
	for name, n := range want {
		if opens[name] != n {
			t.Errorf("%s opened %d times; want %d (all opens: %v)", name, opens[name], n, opens)
		}
	}
}

// watchOpens watches the opens of the files in dir (the directory, and
// segments 1 to n each: see TestQuickOpensSealedSegmentsOnce), for
// inotifyOpens to count. The watch ends with the test.
func watchOpens(t *testing.T, dir string, n uint64) (ino, wd int) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ino) })
	if wd, err = unix.InotifyAddWatch(ino, dir, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= n; seq++ {
		if _, err := unix.InotifyAddWatch(ino, filepath.Join(dir, segment.FileName(seq)), unix.IN_OPEN); err != nil {
			t.Fatal(err)
		}
	}
	return ino, wd
}

// inotifyOpens reads the queued events of ino and counts the IN_OPEN
// events of each file name in the directory watched as wd.
func inotifyOpens(t *testing.T, ino int, wd int) map[string]int {
	t.Helper()
	opens := map[string]int{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(ino, buf)
		if err == unix.EAGAIN {
			return opens
		}
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if int(ev.Wd) == wd && ev.Mask&unix.IN_OPEN != 0 && ev.Mask&unix.IN_ISDIR == 0 {
				opens[filepath.Base(string(bytes.TrimRight(name, "\x00")))]++
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// TestQuickCopiedOrMapped: --quick read a sealed segment file up to 512
// KiB whole and mapped a larger one; it now reads the ends of both
// (TestQuickReadsOnlyHeadersAndFooters). Both must find the same: a
// damaged END header (missing-end) and a broken link (chain), nothing of
// a damaged payload, the same record count.
func TestQuickCopiedOrMapped(t *testing.T) {
	for _, size := range []int64{testSize, 1 << 20} {
		dir, want := quickDamage(t, size)
		rep := mustDir(t, dir, Options{Quick: true, Workers: 1})
		if got := classesAt(rep); got != want || rep.Totals.Records != 15 {
			t.Errorf("segments of %d bytes: %d records, findings:\n%swant 15 records and:\n%s", size, rep.Totals.Records, got, want)
		}
	}
}

// quickDamage writes a log of three sealed segments of size bytes, of 5
// records each, with damage --quick finds (an END header, a chain link)
// and damage it does not read (a payload). It returns the log's directory
// and the findings --quick reports of it (classesAt).
func quickDamage(t *testing.T, size int64) (dir, want string) {
	l := newTestLog(t)
	var s []*seg
	for range 3 {
		s = append(s, l.seal(buildSize(l.next, size, payloads(l.next, 5), true)))
	}
	s[0].img[s[0].end+9] ^= 1 // END header
	s[0].write(t)
	s[1].footer.PrevDigest[0] ^= 1
	s[1].setFooter(t, func(*segment.Footer) {})
	s[2].img[s[2].offs[2]+segment.FrameHeaderSize+3] ^= 0x10 // a payload
	s[2].write(t)
	return l.dir, fmt.Sprintf("missing-end 1:%d\nchain 2:%d\n", s[0].end, size-segment.FooterSize)
}

// TestQuickReadsOnlyHeadersAndFooters: --quick reads what it checks of a
// sealed segment file, its header, footer and END frame, with pread, and
// maps none of them; it mapped a file larger than 512 KiB (2 mmap, 3
// munmap and 3 madvise calls) and read a smaller one whole, and on a log
// of many small segments took longer than a full check. Run where
// a mapping of a file fails (testfs.NoFileMappings), it finds what it
// finds in TestQuickCopiedOrMapped, and reads less than a page a
// segment (/proc/self/io's count: a mapping's faults are not in it).
func TestQuickReadsOnlyHeadersAndFooters(t *testing.T) {
	if !testfs.InChild(t) {
		return
	}
	testfs.NoFileMappings(t)
	for _, size := range []int64{testSize, 1 << 20} {
		dir, want := quickDamage(t, size)
		before := testfs.BytesRead(t)
		rep := mustDir(t, dir, Options{Quick: true, Workers: 1})
		read := testfs.BytesRead(t) - before
		if got := classesAt(rep); got != want || rep.Totals.Records != 15 || rep.Totals.Sealed != 3 {
			t.Errorf("segments of %d bytes: %d sealed, %d records, findings:\n%s%s\nwant 3 sealed, 15 records and:\n%s",
				size, rep.Totals.Sealed, rep.Totals.Records, got, summary(rep), want)
		}
		if read >= 3*4096 {
			t.Errorf("segments of %d bytes: %d bytes read for 3 segments; want less than a page each", size, read)
		}
	}
}

// classesAt lists a report's findings as "class seq:offset" lines.
func classesAt(rep *Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "%s %d:%d\n", f.Class, f.Seq, f.Offset)
	}
	return b.String()
}
