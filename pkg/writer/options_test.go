package writer

import (
	"strings"
	"testing"
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
