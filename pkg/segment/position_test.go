package segment

import (
	"math"
	"testing"
)

func TestPositionText(t *testing.T) {
	for _, p := range []Position{{0, 0}, {1, HeaderSize}, {42, 4096}, {math.MaxUint64, math.MaxInt64}} {
		s := p.String()
		got, err := ParsePosition(s)
		if err != nil || got != p {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v", s, got, err, p)
		}
	}
	if s := (Position{Seq: 42, Offset: 4096}).String(); s != "42:4096" {
		t.Fatalf("String = %q", s)
	}
	for in, want := range map[string]Position{
		" 3:64\n":                  {3, 64},
		"00003:0064":               {3, 64},
		"18446744073709551615:8":   {math.MaxUint64, 8},
		"1:9223372036854775807":    {1, math.MaxInt64},
		"1:+64":                    {1, 64}, // strconv accepts a sign on the offset
		"1:-0":                     {1, 0},
		"7:10000000000":            {7, 10_000_000_000},
		"7:64 ":                    {7, 64},
		"\t18446744073709551614:0": {math.MaxUint64 - 1, 0},
	} {
		got, err := ParsePosition(in)
		if err != nil || got != want {
			t.Errorf("ParsePosition(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", ":", "3", "3:", ":64", "a:64", "3:b", "3:-8", "-3:64", "+3:64", "3:64:1", "3 :64", "3: 64",
		"18446744073709551616:0", "1:9223372036854775808", "0x10:64", "3.0:64",
	} {
		if p, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) accepted: %+v", bad, p)
		}
	}
}

func TestPositionCompare(t *testing.T) {
	ordered := []Position{{0, 0}, {0, 64}, {1, 0}, {1, 64}, {1, 96}, {2, 64}, {math.MaxUint64, 0}, {math.MaxUint64, math.MaxInt64}}
	for i, p := range ordered {
		for j, q := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", p, q, got, want)
			}
		}
	}
}
