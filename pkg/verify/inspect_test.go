package verify

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

func slotsOf(in *Inspection) string {
	var parts []string
	if err := in.Slots(func(s Slot) bool {
		parts = append(parts, fmt.Sprintf("%s@%d+%d/%s", s.Kind, s.Offset, s.Len, s.CRC))
		return true
	}); err != nil {
		return err.Error()
	}
	return strings.Join(parts, " ")
}

func TestInspect(t *testing.T) {
	m := buildMatrix(t)
	img := append([]byte(nil), m.img...)
	img[m.offs[0]+26] ^= 1                                                   // torn payload
	segment.StoreLength(img, m.offs[2], -segment.LoadLength(img, m.offs[2])) // a claim: torn in a sealed segment
	img[m.end+segment.FrameHeaderSize+8] = 7                                 // garbage
	if err := os.WriteFile(m.path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	in, err := Inspect(m.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.HeaderErr != nil || in.CheckErr != nil || !in.Sealed() || in.Seq != m.seq || in.Footer.Records != 4 {
		t.Fatalf("inspection %+v", in)
	}
	want := fmt.Sprintf("torn@64+%d/bad data@%d+%d/ok torn@%d+%d/- pad@%d+48/ok data@%d+%d/ok end@%d+%d/ok garbage@%d+%d/-",
		m.offs[1]-64, m.offs[1], m.offs[2]-m.offs[1], m.offs[2], m.pad-m.offs[2], m.pad, m.offs[3], m.end-m.offs[3],
		m.end, segment.RecordLimit(testSize)-m.end, m.end+32, segment.RecordLimit(testSize)-m.end-32)
	if got := slotsOf(in); got != want {
		t.Fatalf("slots\n got %s\nwant %s", got, want)
	}
	if len(in.HeaderBytes()) != segment.HeaderSize || len(in.FooterBytes()) != segment.FooterSize {
		t.Fatal("header/footer bytes")
	}
	n := 0
	if err := in.Slots(func(Slot) bool { n++; return false }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("Slots did not stop: %d calls", n)
	}
}

// With a damaged header, frames are still listed using the file name's
// sequence; without a usable name, nothing is.
func TestInspectBadHeader(t *testing.T) {
	m := buildMatrix(t)
	img := append([]byte(nil), m.img...)
	img[20] ^= 1
	if err := os.WriteFile(m.path, img, 0o640); err != nil {
		t.Fatal(err)
	}
	in, err := Inspect(m.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if !errors.Is(in.HeaderErr, segment.ErrCorrupt) || !in.SeqFromName || !in.Sealed() {
		t.Fatalf("%+v", in)
	}
	if got := slotsOf(in); !strings.HasPrefix(got, "data@64+") || strings.Contains(got, "torn") {
		t.Fatalf("slots %s", got)
	}
	other := m.path + ".copy"
	if err := os.WriteFile(other, img[:100], 0o640); err != nil {
		t.Fatal(err)
	}
	in2, err := Inspect(other)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if got := slotsOf(in2); got != "" || in2.FooterBytes() != nil || in2.Sealed() {
		t.Fatalf("unwalkable file: slots %q", got)
	}
	if _, err := Inspect(m.path + ".missing"); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// An unsealed segment ends in its zero tail.
func TestInspectUnsealed(t *testing.T) {
	s := build(3, payloads(3, 2), false)
	s.path = t.TempDir() + "/" + segment.FileName(3)
	s.write(t)
	in, err := Inspect(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if !in.Unsealed() || in.Sealed() {
		t.Fatalf("footer err %v", in.FooterErr)
	}
	if got := slotsOf(in); !strings.HasSuffix(got, fmt.Sprintf("tail@%d+%d/-", s.end, segment.RecordLimit(testSize)-s.end)) {
		t.Fatalf("slots %s", got)
	}
}

// A segment truncated while it is inspected (the file is mapped) ends the
// slot listing with an error naming the file, not a SIGBUS.
func TestInspectTruncatedWhileRead(t *testing.T) {
	l := newTestLog(t)
	s := l.sealed(300)
	in, err := Inspect(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.Truncate(s.path, 4096); err != nil {
		t.Fatal(err)
	}
	n := 0
	err = in.Slots(func(sl Slot) bool {
		n++
		_ = append([]byte(nil), sl.Bytes...) // what --hex reads
		return true
	})
	if err == nil || !strings.Contains(err.Error(), s.path) || !strings.Contains(err.Error(), "changed while it was read") {
		t.Fatalf("Slots over a truncated file: %v (%d slots)", err, n)
	}
}
