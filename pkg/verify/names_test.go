package verify

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestJSONNamesNotUTF8: a log directory and an unexpected file named in
// bytes that are not UTF-8 were reported in JSON under names with U+FFFD
// in place of those bytes, which open nothing. The *_base64 fields give
// them exactly; valid names get none.
func TestJSONNamesNotUTF8(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "log\xe9") // Latin-1 é
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	l := &testLog{t: t, dir: dir, next: 1}
	l.sealed(3)
	stray := filepath.Join(dir, "notes\xff.txt")
	if err := os.WriteFile(stray, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustDir(t, dir, Options{})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Logs []struct {
			Dir       string `json:"dir"`
			DirBase64 string `json:"dir_base64"`
		} `json:"logs"`
		Segments []struct {
			Path       string `json:"path"`
			PathBase64 string `json:"path_base64"`
		} `json:"segments"`
		Findings []struct {
			Class      string `json:"class"`
			PathBase64 string `json:"path_base64"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	decode := func(s string) string {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return string(raw)
	}
	if len(doc.Logs) != 1 || decode(doc.Logs[0].DirBase64) != dir {
		t.Fatalf("logs %+v: want dir_base64 of %q", doc.Logs, dir)
	}
	if len(doc.Segments) != 1 || decode(doc.Segments[0].PathBase64) != rep.Segments[0].Path {
		t.Fatalf("segments %+v: want path_base64 of %q", doc.Segments, rep.Segments[0].Path)
	}
	if len(doc.Findings) != 1 || doc.Findings[0].Class != string(Unexpected) || decode(doc.Findings[0].PathBase64) != stray {
		t.Fatalf("findings %+v: want the unexpected file, path_base64 of %q", doc.Findings, stray)
	}
	// Valid UTF-8 names: no such field.
	ok := newTestLog(t)
	ok.sealed(1)
	if b, err = json.Marshal(mustDir(t, ok.dir, Options{})); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	seg := m["segments"].([]any)[0].(map[string]any)
	lg := m["logs"].([]any)[0].(map[string]any)
	if _, has := seg["path_base64"]; has {
		t.Errorf("path_base64 for a valid name: %v", seg)
	}
	if _, has := lg["dir_base64"]; has {
		t.Errorf("dir_base64 for a valid name: %v", lg)
	}
	if _, has := seg["records"]; !has {
		t.Errorf("the segment's own fields are gone: %v", seg)
	}
}
