package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/klauspost/compress/zstd"
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
	for _, s := range []string{"10", "+1", "+0", "0", "-5", "+", "18446744073709551615", "1e3", "--5", "-+5", "+-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseLines(s)
		k, plus := strings.CutPrefix(s, "+")
		if !plus {
			k = strings.TrimPrefix(k, "-")
		}
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

// TestParseSinceForms: --since takes what RFC 3339 allows beside Go's
// layout, a lowercase t or z and a space for the T (its section 5.6
// note), as date(1) and databases print it; Go's time.Parse refused them
// (found by a hostile-user review). A time without a zone is refused, as
// before: whose clock it means is a guess.
func TestParseSinceForms(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	want := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{
		"2026-11-28T10:00:00Z", "2026-11-28t10:00:00z", "2026-11-28 10:00:00Z",
		"2026-11-28 10:00:00z", "2026-11-28 11:00:00+01:00", "2026-11-28 10:00:00.000Z", "2h",
	} {
		if got, err := parseSince(s, now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"2026-11-28 10:00:00", "2026-11-28", "2026-11-28  10:00:00Z", "2026-11-28T10:00:00 Z",
		"2026-11-28_10:00:00Z", "2026-11-28T10:00Z", "yesterday",
	} {
		_, err := parseSince(s, now)
		if err == nil || !strings.Contains(err.Error(), "2024-05-01T12:00:00Z") || !strings.Contains(err.Error(), "2024-05-01 12:00:00+02:00") {
			t.Errorf("%q: %v; want it refused, naming the accepted forms", s, err)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"15m", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5+02:00", "-1h", "", "1h30m", "9999999999h", "2024-05-01 12:00:00z", "2024-05-01t12:00:00.5Z"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			return
		}
		// RFC 3339 allows a lowercase t and z, and a space for the T.
		if ts, perr := time.Parse(time.RFC3339Nano, strings.ToUpper(strings.Replace(s, " ", "T", 1))); perr == nil {
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
	for _, s := range []string{"3:64\n", "3:64 2026-11-26T16:22:28.104425797Z\n", "", "  \n", "3:64 x", "1:2 3 4", "3:64 1970-01-01T00:00:00Z", "3:64 0001-01-01T00:00:00Z", "3:64 2263-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		// The time accepted is the time written, not a wrapped one.
		if fields := strings.Fields(s); len(fields) == 2 {
			if want, _ := time.Parse(time.RFC3339Nano, fields[1]); !time.Unix(0, c.created).Equal(want) {
				t.Fatalf("%q: creation time read as %v", s, time.Unix(0, c.created).UTC())
			}
		}
		// What is accepted is written back as it was read.
		if back, err := parseCursor(c.String() + "\n"); err != nil || back != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, c, c.String(), back, err)
		}
	})
}

// TestParseSize: every suffix means what the help says.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "7B": 7, "7b": 7,
		"64KiB": 64 << 10, "64K": 64 << 10, "64k": 64 << 10, "3 KB": 3000,
		"2MiB": 2 << 20, "2M": 2 << 20, "2MB": 2000000, " 1 GiB ": 1 << 30, "1G": 1 << 30, "5GB": 5000000000,
	} {
		if n, err := parseSize(in); err != nil || n != want {
			t.Errorf("%q -> %d, %v; want %d", in, n, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "12 TiB", "1e6", "4611686018427387905", "4194304 TiB"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("%q accepted as %d", in, n)
		}
	}
}

// FuzzParseLevel: a level is refused, or is the library's level for that
// number or name.
func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"1", "3", "22", "23", "0", "best", "default", "Fastest", "-1", "+3", "03"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLevel(s)
		if err != nil {
			return
		}
		if n, aerr := strconv.Atoi(s); aerr == nil {
			if n < 1 || n > 22 || l != zstd.EncoderLevelFromZstd(n) {
				t.Fatalf("%q -> %v", s, l)
			}
			return
		}
		if ok, want := zstd.EncoderLevelFromString(s); !ok || l != want {
			t.Fatalf("%q -> %v", s, l)
		}
	})
}
