package verify

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// rawName is the standard base64 of name's bytes when they are not valid
// UTF-8, else "". JSON holds text, and encoding/json writes U+FFFD for
// each invalid byte: a file or directory named in another encoding (a
// Latin-1 name on an old file system) would be reported under a name
// that finds nothing. The *_base64 fields give the exact bytes, for
// tooling to open the file by; the text field stays, for people.
func rawName(name string) string {
	if utf8.ValidString(name) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(name))
}

// MarshalJSON adds path_base64 when the path is not valid UTF-8
// (rawName).
func (s SegmentReport) MarshalJSON() ([]byte, error) {
	type plain SegmentReport // without this method
	return json.Marshal(struct {
		plain
		PathBase64 string `json:"path_base64,omitempty"`
	}{plain(s), rawName(s.Path)})
}

// MarshalJSON adds dir_base64 when the directory is not valid UTF-8
// (rawName).
func (l LogReport) MarshalJSON() ([]byte, error) {
	type plain LogReport
	return json.Marshal(struct {
		plain
		DirBase64 string `json:"dir_base64,omitempty"`
	}{plain(l), rawName(l.Dir)})
}
