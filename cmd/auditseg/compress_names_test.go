package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestCompressJSONNamesNotUTF8: compress-finished -o json wrote a log
// directory named in bytes that are not UTF-8 (and so every segment,
// archive and temporary file in it) with U+FFFD in place of those bytes:
// names that open nothing. Each such field must come with a *_base64
// sibling holding the exact bytes, as verify -o json has (187911a), in
// the plan of a dry run, the results of a run, and the object of a run
// that could not start.
func TestCompressJSONNamesNotUTF8(t *testing.T) {
	made, _ := compressLog(t, 3000)
	dir := filepath.Join(filepath.Dir(made), "log\xe9") // Latin-1 é
	if err := os.Rename(made, dir); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, segment.ArchiveName(1)) + segment.TempExt
	if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := execute(t, nil, "compress-finished", "-n", "-o", "json", dir)
	if code != exitOK {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	raw := rawNames(t, stdout, dir)
	for _, want := range []string{"dir", "temps_removed", "planned.path", "planned.archive", "skipped.path"} {
		if len(raw[want]) == 0 {
			t.Errorf("dry run: no %s_base64", want)
		}
	}
	if got := raw["dir"]; len(got) != 1 || got[0] != dir {
		t.Errorf("dry run: dir_base64 gives %q, want %q", got, dir)
	}
	if got := raw["temps_removed"]; len(got) != 1 || got[0] != tmp {
		t.Errorf("dry run: temps_removed_base64 gives %q, want %q", got, tmp)
	}
	for _, p := range raw["planned.path"] {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("dry run: planned path_base64: %v", err)
		}
	}

	stdout, stderr, code = execute(t, nil, "compress-finished", "-o", "json", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw = rawNames(t, stdout, dir)
	for _, want := range []string{"dir", "temps_removed", "results.original", "results.archive", "skipped.path"} {
		if len(raw[want]) == 0 {
			t.Errorf("run: no %s_base64", want)
		}
	}
	if got := raw["dir"]; len(got) != 1 || got[0] != dir {
		t.Errorf("dir_base64 gives %q, want %q", got, dir)
	}
	for _, p := range raw["results.archive"] {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("results archive_base64: %v", err)
		}
	}

	missing := filepath.Join(filepath.Dir(dir), "gone\xff")
	stdout, _, code = execute(t, nil, "compress-finished", "-o", "json", missing)
	if code != exitUsage {
		t.Fatalf("missing directory: exit %d: %s", code, stdout)
	}
	if got := rawNames(t, stdout, missing)["dir"]; len(got) != 1 || got[0] != missing {
		t.Errorf("run that could not start: dir_base64 gives %q, want %q", got, missing)
	}
}

// rawNames decodes a compress-finished JSON document and returns, keyed
// by field ("dir", "planned.path", ...), the bytes its *_base64 siblings
// give. It fails t when a string field other than the messages for people
// (error, reason) shows U+FFFD without such a sibling, when a sibling
// does not decode, or when a name it gives is not under (or is not) dir.
func rawNames(t *testing.T, doc, dir string) map[string][]string {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal([]byte(doc), &top); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	out := map[string][]string{}
	decode := func(field string, v any) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s_base64: %v is not a string", field, v)
			return
		}
		if s == "" {
			return // a valid name among others (temps_removed_base64)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Errorf("%s_base64 %q: %v", field, s, err)
			return
		}
		if name := string(b); name != dir && !strings.HasPrefix(name, dir+"/") {
			t.Errorf("%s_base64 gives %q, not in %q", field, name, dir)
		}
		out[field] = append(out[field], string(b))
	}
	var walk func(prefix string, obj map[string]any)
	walk = func(prefix string, obj map[string]any) {
		for k, v := range obj {
			if k == "error" || k == "reason" || strings.HasSuffix(k, "_base64") {
				continue
			}
			field := prefix + k
			sib, has := obj[k+"_base64"]
			switch v := v.(type) {
			case string:
				if strings.ContainsRune(v, '\uFFFD') && !has {
					t.Errorf("%s %q has no %s_base64", field, v, k)
				}
				if has {
					decode(field, sib)
				}
			case []any:
				sibs, _ := sib.([]any)
				if has && len(sibs) != len(v) {
					t.Errorf("%s_base64 %v: %d entries for %d", field, sib, len(sibs), len(v))
					continue
				}
				for i, e := range v {
					switch e := e.(type) {
					case map[string]any:
						walk(field+".", e)
					case string:
						if strings.ContainsRune(e, '\uFFFD') && !has {
							t.Errorf("%s[%d] %q has no %s_base64", field, i, e, k)
						}
						if has {
							decode(field, sibs[i])
						}
					}
				}
			}
		}
	}
	walk("", top)
	return out
}
