package testfs

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// BytesRead is how many bytes the process has read so far with read(2),
// pread(2) and their kin (rchar in /proc/self/io), whatever from: what
// it read through a mapping is not counted. Without the file the test is
// skipped.
func BytesRead(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "rchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}
