package speccheck

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// Section 10's constants and RFC 8878's.
const (
	zstdMagic     = 0xFD2FB528
	summaryMagic  = 0x184D2A5A
	summaryLen    = 212
	summaryBody   = 204
	maxContentGiB = 1 << 30
)

// zstdFrameEnd returns the end of the zstd data frame at the start of b
// and its stated content size, per RFC 8878 sections 3.1.1 to 3.1.1.2.
func zstdFrameEnd(b []byte) (end int64, contentSize uint64, err error) {
	if len(b) < 5 || le.Uint32(b) != zstdMagic {
		return 0, 0, reject(0, "not a zstd data frame")
	}
	fhd := b[4]
	fcsFlag, single, checksum, dictFlag := fhd>>6, fhd>>5&1, fhd>>2&1, fhd&3
	if dictFlag != 0 {
		return 0, 0, reject(4, "dictionary")
	}
	p := 5
	if single == 0 {
		p++ // window descriptor
	}
	fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single == 1 {
		fcsLen = 1
	}
	if fcsLen == 0 || len(b) < p+fcsLen {
		return 0, 0, reject(4, "no content size")
	}
	var cs [8]byte
	copy(cs[:], b[p:p+fcsLen])
	contentSize = le.Uint64(cs[:])
	if fcsLen == 2 {
		contentSize += 256
	}
	p += fcsLen
	for {
		if len(b) < p+3 {
			return 0, 0, reject(int64(p), "truncated block header")
		}
		bh := uint32(b[p]) | uint32(b[p+1])<<8 | uint32(b[p+2])<<16
		last, typ, n := bh&1, bh>>1&3, int(bh>>3)
		p += 3
		if typ == 1 { // RLE: one byte of content
			n = 1
		}
		p += n
		if last == 1 {
			break
		}
	}
	if checksum == 1 {
		p += 4
	}
	if p > len(b) {
		return 0, 0, reject(int64(len(b)), "truncated frame")
	}
	return int64(p), contentSize, nil
}

// checkArchive is section 10 for one archive file: it returns the segment
// it holds (nil when none can be had) and the archive's own problems.
func checkArchive(b []byte) (content []byte, summary []byte, problems []error) {
	end, cs, err := zstdFrameEnd(b)
	if err != nil {
		return nil, nil, []error{err}
	}
	size := uint64(len(b))
	if cs < 1 || cs > maxContentGiB || cs > 32768*size || size > cs+cs/1024+4096 {
		return nil, nil, []error{reject(0, "content size %d for a %d-byte file", cs, size)}
	}
	// Only skippable frames follow; the last one, if it is 204 bytes of
	// summaryMagic, is the summary.
	for p := end; p < int64(len(b)); {
		if int64(len(b)) < p+8 || le.Uint32(b[p:])&0xFFFFFFF0 != 0x184D2A50 {
			return nil, nil, []error{reject(p, "not a skippable frame after the data frame")}
		}
		n := int64(le.Uint32(b[p+4:]))
		if p+8+n > int64(len(b)) {
			return nil, nil, []error{reject(p, "truncated skippable frame")}
		}
		if p+8+n == int64(len(b)) && le.Uint32(b[p:]) == summaryMagic && n == summaryBody {
			summary = b[p:]
		}
		p += 8 + n
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxContentGiB+1))
	if err != nil {
		panic(err)
	}
	defer dec.Close()
	content, err = dec.DecodeAll(b[:end], nil)
	if err != nil || uint64(len(content)) != cs {
		return nil, summary, []error{reject(0, "does not decompress: %v", err)}
	}
	return content, summary, nil
}

// checkSummary is section 10's summary frame against the content it copies.
func checkSummary(sum, content []byte, seq uint64) error {
	switch {
	case string(sum[8:16]) != "ASEGSUMM":
		return reject(8, "summary tag")
	case crc32.Checksum(sum[8:208], castagnoli) != le.Uint32(sum[208:]):
		return reject(208, "summary CRC")
	}
	h, err := decodeHeader(sum[16:80])
	if err != nil {
		return reject(16, "summary header: %v", err)
	}
	if _, err := decodeFooter(sum[80:208], int64(h.Size), h.Seq, false); err != nil {
		return reject(80, "summary footer: %v", err)
	}
	if content != nil && (!bytes.Equal(sum[16:80], content[:64]) || !bytes.Equal(sum[80:208], content[len(content)-footerSize:])) {
		return reject(16, "summary is not a copy of the segment's header and footer")
	}
	return nil
}

var segName = regexp.MustCompile(`^(\d{20})\.seg(\.zst)?$`)

// LogReport is the clean-room verifier's verdict on a log directory.
type LogReport struct {
	Segments []*Segment
	Problems map[string][]error // by file name
}

func (r *LogReport) Clean() bool { return len(r.Problems) == 0 }

// checkLog verifies a closed log directory: every segment, the names, the
// gaps and the digest chain (sections 1, 6, 10).
func checkLog(dir string) (*LogReport, error) { return checkLogMode(dir, false) }

// checkLogMode is checkLog, or with quick what `verify --quick` checks
// (sections 6 and 10): sealed segments by their header and footer, and
// an archive with a summary that checks by that summary alone.
func checkLogMode(dir string, quick bool) (*LogReport, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type named struct {
		seq  uint64
		name string
		zst  bool
	}
	var segs []named
	for _, e := range ents {
		m := segName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		seq, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		segs = append(segs, named{seq, e.Name(), m[2] != ""})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	r := &LogReport{Problems: map[string][]error{}}
	var prev *[32]byte
	for i, n := range segs {
		if i > 0 && n.seq == segs[i-1].seq {
			continue // the .seg original is used; it sorted first
		}
		if i > 0 && n.seq != segs[i-1].seq+1 {
			r.Problems[n.name] = append(r.Problems[n.name], reject(0, "gap before it"))
			prev = nil
		}
		if n.seq == 1 {
			prev = &[32]byte{}
		}
		b, err := os.ReadFile(filepath.Join(dir, n.name))
		if err != nil {
			return nil, err
		}
		img := b
		if quick && n.zst {
			if s := quickArchive(n.seq, b, prev); s != nil {
				r.Segments = append(r.Segments, s)
				if len(s.Problems) > 0 {
					r.Problems[n.name] = s.Problems
				}
				d := s.Footer.Digest
				prev = &d
				continue
			}
		}
		if n.zst {
			content, sum, probs := checkArchive(b)
			r.Problems[n.name] = append(r.Problems[n.name], probs...)
			if sum != nil {
				if err := checkSummary(sum, content, n.seq); err != nil {
					r.Problems[n.name] = append(r.Problems[n.name], err)
				}
			}
			if content == nil {
				prev = nil
				continue
			}
			img = content
		}
		s := checkSegmentMode(n.seq, img, prev, i == len(segs)-1, !n.zst, quick)
		r.Segments = append(r.Segments, s)
		r.Problems[n.name] = append(r.Problems[n.name], s.Problems...)
		if len(r.Problems[n.name]) == 0 {
			delete(r.Problems, n.name)
		}
		if s.Sealed {
			d := s.Footer.Digest
			prev = &d
		} else {
			prev = nil // recovery left it unsealed: the next link is not checked
		}
	}
	return r, nil
}

// quickArchive is an archive read from its summary alone, nil when it has
// none that checks (section 10): then it is decompressed, quick or not.
func quickArchive(nameSeq uint64, b []byte, prev *[32]byte) *Segment {
	if len(b) < summaryLen {
		return nil
	}
	sum := b[len(b)-summaryLen:]
	if le.Uint32(sum) != summaryMagic || le.Uint32(sum[4:]) != summaryBody || checkSummary(sum, nil, nameSeq) != nil {
		return nil
	}
	s := &Segment{NameSeq: nameSeq, Sealed: true}
	s.Header, _ = decodeHeader(sum[16:80])
	s.Footer, _ = decodeFooter(sum[80:208], int64(s.Header.Size), s.Header.Seq, false)
	bad := func(off int64, format string, args ...any) {
		s.Problems = append(s.Problems, reject(off, format, args...))
	}
	if s.Header.Seq != nameSeq {
		bad(16, "header sequence %d, name %d", s.Header.Seq, nameSeq)
	}
	checkSealing(s, prev, bad)
	return s
}
