package names

import (
	"encoding/base64"
	"testing"
)

func TestBase64(t *testing.T) {
	for _, valid := range []string{"", "/var/log/audit", "/tmp/log\u00e9/00000000000000000001.seg"} {
		if got := Base64(valid); got != "" {
			t.Errorf("%q: %q, want none", valid, got)
		}
	}
	for _, invalid := range []string{"log\xe9", "/tmp/notes\xff.txt", "\xc3"} {
		b, err := base64.StdEncoding.DecodeString(Base64(invalid))
		if err != nil || string(b) != invalid {
			t.Errorf("%q: %q (%v)", invalid, b, err)
		}
	}
}

func TestList(t *testing.T) {
	if got := List([]string{"a", "b"}); got != nil {
		t.Errorf("valid names: %q, want nil", got)
	}
	got := List([]string{"a", "b\xff", "c"})
	if len(got) != 3 || got[0] != "" || got[1] != Base64("b\xff") || got[2] != "" {
		t.Errorf("%q: want one entry per name, only b\\xff's set", got)
	}
}
