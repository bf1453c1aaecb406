package verify

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// TestQuickEndsAsImage: --quick checks a sealed segment file from its
// header, footer and END frame read with pread (checkEnds), and its
// result must be the one checkImage makes of the whole file mapped:
// every field, findings and their order included, for every damage
// --quick looks at in a file whose footer decodes, and for some it does
// not read or that leave the segment unsealed (those are still mapped).
func TestQuickEndsAsImage(t *testing.T) {
	cases := []struct {
		name   string
		sealed bool // read as ends, not mapped
		damage func(s *seg) string
	}{
		{"clean", true, nil},
		{"END header", true, func(s *seg) string { s.img[s.end+9] ^= 1; return "" }},
		{"END offset at a record", true, func(s *seg) string { s.footer.EndOffset = s.offs[1]; return "footer" }},
		{"END offset at zeros", true, func(s *seg) string { s.footer.EndOffset = s.end + 64; return "footer" }},
		{"unknown flags", true, func(s *seg) string { s.footer.Flags |= 4; return "footer" }},
		{"recovered", true, func(s *seg) string { s.footer.Flags |= segment.FlagRecovered; return "footer" }},
		{"sealed before created", true, func(s *seg) string { s.footer.SealedAt = baseCreated - 3*3600*second; return "footer" }},
		{"a payload", true, func(s *seg) string { s.img[s.offs[2]+segment.FrameHeaderSize+1] ^= 1; return "" }},
		{"another number's name", true, func(s *seg) string { s.path = filepath.Join(filepath.Dir(s.path), segment.FileName(9)); return "" }},
		{"footer checksum", false, func(s *seg) string { s.img[len(s.img)-3] ^= 1; return "" }},
		{"footer sequence", false, func(s *seg) string { s.footer.Seq++; return "footer" }},
		{"header", false, func(s *seg) string { s.img[1] ^= 1; return "" }},
		{"not sealed", false, func(s *seg) string { clear(s.img[len(s.img)-segment.FooterSize:]); return "" }},
	}
	buf := make([]byte, windowSize)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLog(t)
			s := l.sealed(5)
			if c.damage != nil {
				if c.damage(s) == "footer" {
					s.setFooter(t, func(*segment.Footer) {})
				}
				s.write(t)
			}
			o := Options{Quick: true}.withDefaults()
			_, _, e, err := openImage(s.path, &o, buf)
			if err != nil || (e != nil) != c.sealed {
				t.Fatalf("openImage: ends %v, error %v; want ends %v", e != nil, err, c.sealed)
			}
			got := checkFile(s.path, &o, buf)
			im, err := segment.OpenImage(s.path)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			want := newResult(s.path, &o)
			checkGuarded(im, want, &o, nil)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("from the file's ends:\n%+v\n%+v\nfrom its image:\n%+v\n%+v", *got, got.found.list, *want, want.found.list)
			}
		})
	}
}
