package verify

import (
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A dead writer's unsealed segment whose header recovery refuses (bad,
// or disagreeing with the file) is missing-end "and writer.Open leaves it
// unsealed: " and why. The why must say it is the header: the finding's
// offset is where the records stop, not the header's, and a bare "bad
// magic" or "header checksum mismatch" read there names nothing. Before
// segment.Refusal it said "its header is damaged", with no detail.
func TestRefusedHeaderNamedInMissingEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(img []byte)
		want   string
	}{
		{"bad magic", func(img []byte) { img[0] = 'x' }, `its header is damaged: bad magic "xUDITSEG"`},
		{"reserved bytes", func(img []byte) { img[40] = 1 }, "its header is damaged: header checksum mismatch"},
		{"another segment's header", func(img []byte) {
			copy(img[:segment.HeaderSize], segment.NewImage(7, testSize, baseCreated))
		}, "its header disagrees with the file: header sequence 7 does not match the file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t)
			l.sealed(3)
			s := build(2, payloads(2, 4), false)
			tc.damage(s.img)
			l.add(s)
			l.open(2, false) // the newest, crash residue
			rep, err := Dir(l.dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range rep.Findings {
				if f.Class == MissingEnd && f.Seq == 2 {
					got = append(got, f.Reason)
				}
			}
			want := "neither END frame nor footer, and writer.Open leaves it unsealed: " + tc.want
			if len(got) != 1 || !strings.HasPrefix(got[0], want) {
				t.Fatalf("missing-end of segment 2: %q; want one starting %q", got, want)
			}
			if code := rep.ExitCode(false); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
		})
	}
}
