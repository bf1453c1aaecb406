package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
)

// The flag parsers take what users type: no input may panic, and what they
// accept must mean what it says.

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64KiB", "1 MiB", "3g", "10KB", "7B", "-1", "9223372036854775807", "4611686018427387904k", " 12 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error %q does not quote the input", err)
			}
			return
		}
		if n < 0 || n > 1<<62 {
			t.Fatalf("%q -> %d", s, n)
		}
		// The number back in plain bytes is the same size.
		if m, err := parseSize(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("%q -> %d, but %d -> %d, %v", s, n, n, m, err)
		}
		if d, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && d != n {
			t.Fatalf("plain number %q -> %d", s, n)
		}
	})
}

func FuzzParseLines(f *testing.F) {
	for _, s := range []string{"10", "+1", "+0", "0", "-5", "+", "18446744073709551615", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseLines(s)
		k, plus := strings.CutPrefix(s, "+")
		n, perr := strconv.ParseUint(k, 10, 64)
		if (err == nil) != (perr == nil) {
			t.Fatalf("%q: error %v, number %v", s, err, perr)
		}
		if err != nil {
			return
		}
		want := reader.Last(n)
		if plus {
			want = reader.Skip(max(n, 1) - 1)
		}
		if st != want {
			t.Fatalf("%q -> %+v, want %+v", s, st, want)
		}
	})
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"15m", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5+02:00", "-1h", "", "1h30m", "9999999999h"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			return
		}
		if ts, perr := time.Parse(time.RFC3339Nano, s); perr == nil {
			if !got.Equal(ts) {
				t.Fatalf("%q -> %v, want %v", s, got, ts)
			}
			return
		}
		d, perr := time.ParseDuration(s)
		if perr != nil || d < 0 || !got.Equal(now.Add(-d)) {
			t.Fatalf("%q accepted as %v (duration %v, %v)", s, got, d, perr)
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"3:64\n", "3:64 2026-11-26T16:22:28.104425797Z\n", "", "  \n", "3:64 x", "1:2 3 4", "3:64 1970-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		// What is accepted is written back as it was read.
		if back, err := parseCursor(c.String() + "\n"); err != nil || back != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), back, err)
		}
	})
}
