// Package names gives file names to JSON output exactly.
package names

import (
	"encoding/base64"
	"unicode/utf8"
)

// Base64 is the standard base64 of name's bytes when they are not valid
// UTF-8, else "". JSON holds text, and encoding/json writes U+FFFD for
// each invalid byte: a file or directory named in another encoding (a
// Latin-1 name on an old file system) would be reported under a name
// that finds nothing. The *_base64 fields of verify and compress-finished
// give the exact bytes, for tooling to open the file by; the text field
// stays, for people. "" suits omitempty: no such field for a valid name.
func Base64(name string) string {
	if utf8.ValidString(name) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(name))
}

// List is Base64 for a list of names (temps_removed_base64): nil when
// every name is valid UTF-8, so that omitempty leaves the field out, else
// one entry per name, in order, "" for the valid ones.
func List(list []string) []string {
	var out []string
	for i, name := range list {
		if b := Base64(name); b != "" {
			if out == nil {
				out = make([]string, len(list))
			}
			out[i] = b
		}
	}
	return out
}
