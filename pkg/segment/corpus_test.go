package segment

import (
	"bytes"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The seed corpora in testdata/fuzz are generated from the package's own
// builders so that they hold real segments. TestFuzzCorpus fails when a
// seed file is missing or differs from what the generator makes (after a
// change to the builders or the seeds); regenerate with
//
//	go test ./pkg/segment -run TestFuzzCorpus -update-fuzz-corpus
var updateCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz seed files")

// corpusValue renders one fuzz argument in the "go test fuzz v1" format.
func corpusValue(v any) string {
	switch x := v.(type) {
	case []byte:
		return "[]byte(" + strconv.Quote(string(x)) + ")"
	case string:
		return "string(" + strconv.Quote(x) + ")"
	case int64:
		return fmt.Sprintf("int64(%d)", x)
	case uint16:
		return fmt.Sprintf("uint16(%d)", x)
	case bool:
		return fmt.Sprintf("bool(%v)", x)
	}
	panic(fmt.Sprintf("corpus value of type %T", v))
}

func corpusFile(args ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		b.WriteString(corpusValue(a))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// seedRegion returns the record-area bytes of img that fuzzImage lays back:
// head from HeaderSize up to the last non-zero byte before cut, tail from
// cut to the record limit trimmed of leading zeros.
func seedRegion(img []byte, cut int64) (head, tail []byte) {
	rl := RecordLimit(int64(len(img)))
	h := img[HeaderSize:cut]
	h = h[:len(bytes.TrimRight(h, "\x00"))]
	tl := bytes.TrimLeft(img[cut:rl], "\x00")
	return bytes.Clone(h), bytes.Clone(tl)
}

// fullFixture is a segment filled to the data limit: one PAD frame over
// most of the area (its body is never read), a DATA frame ending exactly at
// DataLimit, and the smallest END frame after it.
func fullFixture() (img []byte, data, end int64) {
	img = NewImage(testSeq, testSize, 0)
	dl := DataLimit(testSize)
	data = dl - FrameSize(11)
	PutPad(img, testSeq, HeaderSize, data-HeaderSize)
	end = PutFrame(img, testSeq, data, TypeData, 77, []byte("last record"))
	PutEnd(img, testSeq, end, 78)
	return img, data, end
}

// corpusSeeds returns every seed file, by path under testdata/fuzz.
func corpusSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	add := func(target, name string, args ...any) {
		seeds[filepath.Join(target, name)] = corpusFile(args...)
	}
	rl := RecordLimit(testSize)
	fx := buildFixture(true)
	o := fx.offs
	region := func(img []byte) ([]byte, []byte) { return seedRegion(img, rl) }

	valid, _ := region(fx.img)
	unfinished, _ := region(buildFixture(false).img)
	torn := bytes.Clone(fx.img)
	torn[o[3]+FrameHeaderSize+50] ^= 0xff
	tornHead, _ := region(torn)
	rg := bytes.Clone(fx.img)
	StoreLength(rg, o[1], -24) // reserved, never committed
	clear(rg[o[3] : o[3]+144]) // a gap: a claim never stored
	rgHead, _ := region(rg)
	junk := bytes.Clone(fx.img)
	clear(junk[o[1]:o[3]])
	junk[o[2]+8] = 0x5a // non-zero bytes after zeros that are not a frame
	junkHead, _ := region(junk)
	full, dataOff, endOff := fullFixture()
	fullHead, fullTail := seedRegion(full, dataOff)
	empty := []byte{}

	for _, s := range []struct {
		name       string
		head, tail []byte
		skip       uint16
		live       bool
	}{
		{"valid", valid, empty, 0, false},
		{"valid-live", valid, empty, 0, true},
		{"valid-from-middle", valid, empty, uint16(o[3] - HeaderSize), false},
		{"valid-from-unaligned", valid, empty, uint16(o[1] - HeaderSize + 4), false},
		{"torn", tornHead, empty, 0, false},
		{"reserved-and-gap", rgHead, empty, 0, false},
		{"reserved-and-gap-live", rgHead, empty, 0, true},
		{"junk-after-zeros", junkHead, empty, 0, false},
		{"unfinished", unfinished, empty, 0, false},
		{"unfinished-live", unfinished, empty, 0, true},
		{"full", fullHead, fullTail, 0, false},
		{"empty", empty, empty, 0, false},
	} {
		add("FuzzWalk", s.name, s.head, s.tail, s.skip, s.live)
	}

	for _, s := range []struct {
		name       string
		head, tail []byte
		off        int64
	}{
		{"data", valid, empty, o[3]},
		{"data-empty-payload", valid, empty, o[1]},
		{"end", valid, empty, fx.end},
		{"torn", tornHead, empty, o[3]},
		{"reserved", rgHead, empty, o[1]},
		{"unwritten", rgHead, empty, o[3]},
		{"pad", fullHead, fullTail, HeaderSize},
		{"data-at-data-limit", fullHead, fullTail, dataOff},
		{"end-at-data-limit", fullHead, fullTail, endOff},
		{"unaligned", valid, empty, o[1] + 4},
		{"in-header", valid, empty, 8},
		{"past-limit", valid, empty, rl},
		{"negative", valid, empty, -8},
	} {
		add("FuzzDecodeFrame", s.name, s.head, s.tail, s.off)
	}

	hdr := bytes.Clone(fx.img[:HeaderSize])
	v2 := bytes.Clone(hdr)
	le.PutUint16(v2[8:], 2)
	le.PutUint32(v2[60:], crc32.Checksum(v2[:60], castagnoli))
	resv := bytes.Clone(hdr)
	resv[50] = 1
	le.PutUint32(resv[60:], crc32.Checksum(resv[:60], castagnoli))
	badCRC := bytes.Clone(hdr)
	badCRC[17] ^= 1
	add("FuzzDecodeHeader", "valid", hdr)
	add("FuzzDecodeHeader", "valid-max-size", NewImage(1<<40, MinSegmentSize, -1)[:HeaderSize])
	add("FuzzDecodeHeader", "version-2", v2)
	add("FuzzDecodeHeader", "reserved-nonzero", resv)
	add("FuzzDecodeHeader", "bad-crc", badCRC)
	add("FuzzDecodeHeader", "short", hdr[:40])

	sealed := bytes.Clone(fx.img)
	if _, err := Seal(sealed, [DigestSize]byte{1}, FlagRecovered, 5); err != nil {
		panic(err)
	}
	foot := bytes.Clone(sealed[testSize-FooterSize:])
	reCRC := func(b []byte) []byte { le.PutUint32(b[124:], crc32.Checksum(b[:124], castagnoli)); return b }
	wrongSeq := bytes.Clone(foot)
	le.PutUint64(wrongSeq[8:], testSeq+1)
	badEnd := bytes.Clone(foot)
	le.PutUint64(badEnd[24:], uint64(DataLimit(testSize)+8))
	add("FuzzDecodeFooter", "valid", foot)
	add("FuzzDecodeFooter", "unsealed", make([]byte, FooterSize))
	add("FuzzDecodeFooter", "wrong-seq", reCRC(wrongSeq))
	add("FuzzDecodeFooter", "end-out-of-range", reCRC(badEnd))
	add("FuzzDecodeFooter", "bad-crc", append(bytes.Clone(foot[:100]), 1))
	// A sealer killed before its last store (StoreFooter): all but the
	// magic; and the magic alone damaged into zeros.
	add("FuzzDecodeFooter", "seal-cut", append(make([]byte, len(FooterMagic)), foot[len(FooterMagic):]...))
	add("FuzzDecodeFooter", "magic-half-zero", append(make([]byte, 4), foot[4:]...))

	for name, s := range map[string]string{"valid": "42:4096", "spaces": " 1:64\n", "negative": "1:-64", "huge": "18446744073709551615:9223372036854775807"} {
		add("FuzzParsePosition", name, s)
	}
	for name, s := range map[string]string{"segment": FileName(42), "archive": ArchiveName(7), "temp": FileName(3) + TempExt, "short": "42.seg"} {
		add("FuzzParseName", name, s)
	}
	return seeds
}

func TestFuzzCorpus(t *testing.T) {
	root := filepath.Join("testdata", "fuzz")
	seeds := corpusSeeds()
	names := make([]string, 0, len(seeds))
	for n := range seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(root, n)
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, seeds[n], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("seed %s: %v (regenerate with -update-fuzz-corpus)", p, err)
		} else if !bytes.Equal(got, seeds[n]) {
			t.Errorf("seed %s is out of date (regenerate with -update-fuzz-corpus)", p)
		}
	}
	// The seeds must describe what their names say.
	fx := buildFixture(true)
	img := fuzzImage(seedRegion(fx.img, RecordLimit(testSize)))
	if !bytes.Equal(img[HeaderSize:RecordLimit(testSize)], fx.img[HeaderSize:RecordLimit(testSize)]) {
		t.Fatal("fuzzImage does not rebuild the valid seed's segment")
	}
	full, _, endOff := fullFixture()
	img = fuzzImage(seedRegion(full, endOff-FrameSize(11)))
	if got, _ := evs(img, testSeq, HeaderSize, Quiescent); got != fmt.Sprintf("frame@64+%d frame@%d+40 end@%d+24", endOff-40-64, endOff-40, endOff) {
		t.Fatalf("full seed walks as %s", got)
	}
}
