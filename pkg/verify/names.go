package verify

import (
	"encoding/json"

	"github.com/auditseg/auditseg/internal/names"
)

// MarshalJSON adds path_base64 when the path is not valid UTF-8
// (names.Base64).
func (s SegmentReport) MarshalJSON() ([]byte, error) {
	type plain SegmentReport // without this method
	return json.Marshal(struct {
		plain
		PathBase64 string `json:"path_base64,omitempty"`
	}{plain(s), names.Base64(s.Path)})
}

// MarshalJSON adds dir_base64 when the directory is not valid UTF-8
// (names.Base64).
func (l LogReport) MarshalJSON() ([]byte, error) {
	type plain LogReport
	return json.Marshal(struct {
		plain
		DirBase64 string `json:"dir_base64,omitempty"`
	}{plain(l), names.Base64(l.Dir)})
}
