package writer

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseSyncMode(t *testing.T) {
	for s, want := range map[string]SyncMode{"none": SyncNone, "interval": SyncInterval, "always": SyncAlways} {
		if m, err := ParseSyncMode(s); err != nil || m != want {
			t.Errorf("%q -> %v, %v; want %v", s, m, err, want)
		}
	}
	for _, s := range []string{"", "Always", "fsync", " none", "SyncMode(3)"} {
		if _, err := ParseSyncMode(s); err == nil || !strings.Contains(err.Error(), "want none, interval or always") {
			t.Errorf("%q: %v", s, err)
		}
	}
}

// FuzzParseSyncMode: what is accepted is exactly a mode's name.
func FuzzParseSyncMode(f *testing.F) {
	for _, s := range []string{"none", "interval", "always", "", "ALWAYS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSyncMode(s)
		if err == nil && m.String() != s {
			t.Fatalf("%q accepted as %v", s, m)
		}
		if err != nil && (s == "none" || s == "interval" || s == "always") {
			t.Fatalf("%q refused: %v", s, err)
		}
	})
}

// A log directory that is a dangling symlink, or a loop, is named as
// such: Open said "mkdir DIR: file exists" (found by a hostile-user
// review), and there was no DIR to be seen.
func TestOpenNamesABrokenSymlinkForADirectory(t *testing.T) {
	tmp := t.TempDir()
	dangling, loop := filepath.Join(tmp, "dangling"), filepath.Join(tmp, "loop")
	for _, l := range [][2]string{{"nowhere", dangling}, {"loop", loop}} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	for dir, why := range map[string]string{dangling: "no such file", loop: "too many levels of symbolic links"} {
		w, err := Open(dir, Options{SegmentSize: 64 << 10})
		if err == nil {
			w.Close()
			t.Fatalf("%s: opened", dir)
		}
		if want := dir + " is a symbolic link to "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: %v; want %q and %q", dir, err, want, why)
		}
	}
}

// A sync interval below MinSyncInterval, a negative one included (it was
// taken for the default, 1 s, without a word), is refused before anything is
// made: a few microseconds apart, the flushes of an idle log kept a core
// busy (found by a hostile-user review: 1 ns, 95 % of a core).
func TestSyncIntervalBelowMinimum(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	for _, d := range []time.Duration{time.Nanosecond, time.Microsecond, MinSyncInterval - 1, -time.Nanosecond, -time.Hour} {
		w, err := Open(dir, Options{SegmentSize: 64 << 10, SyncInterval: d})
		if err == nil {
			w.Close()
			t.Fatalf("%v: opened", d)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "below the minimum of 1ms") {
			t.Errorf("%v: %v", d, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("%v: the refused Open made %s (%v)", d, dir, err)
		}
	}
	w, err := Open(dir, Options{SegmentSize: 64 << 10, SyncInterval: MinSyncInterval})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A negative CloseTimeout is refused rather than taken for the default
// (10 s), which it was without a word: a caller asking for no wait at all
// got Close waiting ten seconds for a reservation nobody commits.
func TestNegativeCloseTimeoutRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := Open(dir, Options{SegmentSize: 64 << 10, CloseTimeout: -time.Nanosecond})
	if err == nil {
		w.Close()
		t.Fatal("opened")
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "close timeout -1ns") {
		t.Errorf("%v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused Open made %s (%v)", dir, err)
	}
}

// A TimePrecision above MaxTimePrecision is refused: the shared clock
// would stamp records that long after their commit, and stamps more than
// verify's tolerance (1 h by default) older than their segment are
// reported as torn records; an hour's precision was accepted and did so.
func TestHugeTimePrecisionRefused(t *testing.T) {
	for _, p := range []time.Duration{MaxTimePrecision + 1, time.Hour, 1 << 62} {
		dir := filepath.Join(t.TempDir(), "log")
		w, err := Open(dir, Options{SegmentSize: 64 << 10, TimePrecision: p})
		if err == nil {
			w.Close()
			t.Fatalf("precision %v: opened", p)
		}
		if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "time precision "+p.String()) {
			t.Errorf("precision %v: %v", p, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("the refused Open made %s (%v)", dir, err)
		}
	}
	w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, TimePrecision: MaxTimePrecision})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// A positive TimePrecision below minClockTick reads the clock for every
// record, as a negative one does, instead of refreshing the shared
// timestamp that often: a ticker of 1 ns kept a core busy for as long as
// records arrived (1 µs, half of one), for timestamps no fresher than a
// read of the clock gives.
func TestTinyTimePrecisionReadsTheClock(t *testing.T) {
	for _, c := range []struct {
		precision time.Duration
		ticks     bool
	}{{time.Nanosecond, false}, {time.Microsecond, false}, {minClockTick - 1, false}, {minClockTick, true}} {
		w, err := Open(t.TempDir(), Options{SegmentSize: 64 << 10, TimePrecision: c.precision})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Append([]byte("x")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		dump := string(buf[:runtime.Stack(buf, true)])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		// Started by clock.start, whether it has run yet or not.
		if ticks := strings.Contains(dump, "created by github.com/auditseg/auditseg/pkg/writer.(*clock).start"); ticks != c.ticks {
			t.Errorf("TimePrecision %v: a clock goroutine running: %v, want %v", c.precision, ticks, c.ticks)
		}
	}
}
