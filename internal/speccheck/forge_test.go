package speccheck

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A forged log is damaged the way only someone who can write the log and
// knows the format damages it: every CRC, digest and link after the
// change made good again (by the clean-room code), so that what is left
// to catch it are the format's rules themselves.

// unarchive replaces every archive of dir by the segment file it holds.
func unarchive(t *testing.T, dir string) {
	t.Helper()
	for _, name := range logFiles(t, dir) {
		if !strings.HasSuffix(name, ".zst") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		content, _, probs := checkArchive(b)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".zst")), content, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// forged is a log held in memory, segment files only, in sequence order.
type forged struct {
	names []string
	imgs  [][]byte
}

func (f *forged) footer(i int) []byte { return f.imgs[i][len(f.imgs[i])-footerSize:] }

func (f *forged) sealed(i int) bool {
	return !bytes.Equal(f.footer(i)[:8], make([]byte, 8))
}

// reCRC makes segment i's header and footer CRCs good again.
func (f *forged) reCRC(i int) {
	img := f.imgs[i]
	le.PutUint32(img[60:], crc32.Checksum(img[:60], castagnoli))
	if f.sealed(i) {
		ft := f.footer(i)
		le.PutUint32(ft[124:], crc32.Checksum(ft[:124], castagnoli))
	}
}

// reseal makes segment i's footer good again for its bytes (digest from
// its stored previous digest), then every later link of the chain.
func (f *forged) reseal(i int) {
	for ; i < len(f.imgs); i++ {
		if !f.sealed(i) {
			continue
		}
		ft := f.footer(i)
		var prev [32]byte
		copy(prev[:], ft[60:92])
		d := digest(prev, f.imgs[i], int64(le.Uint64(ft[24:])))
		copy(ft[92:124], d[:])
		f.reCRC(i)
		for j := i + 1; j < len(f.imgs); j++ {
			if f.sealed(j) {
				copy(f.footer(j)[60:92], d[:])
				break
			}
		}
	}
}

// frame returns the first frame of segment i the predicate accepts.
func (f *forged) frame(t *testing.T, i int, ok func(Event) bool) Event {
	t.Helper()
	s := checkSegment(mustSeq(t, f.names[i]), f.imgs[i], nil, true, true)
	for _, e := range s.Events {
		if ok(e) {
			return e
		}
	}
	t.Fatalf("%s: no such frame", f.names[i])
	return Event{}
}

// reFrame makes the CRC of segment i's frame at off good again.
func (f *forged) reFrame(t *testing.T, i int, off int64) {
	f.reFrameImg(f.imgs[i], mustSeq(t, f.names[i]), off)
}

func (f *forged) reFrameImg(img []byte, seq uint64, off int64) {
	l := int64(int32(le.Uint32(img[off:])))
	covered := img[off+8 : off+frameHdrSize]
	if img[off+8] == typeData {
		covered = img[off+8 : off+l]
	}
	le.PutUint32(img[off+4:], frameCRC(seq, off, covered))
}

func isData(e Event) bool { return e.Kind == "frame" && e.Frame.Type == typeData }

func isPadded(e Event) bool { return isData(e) && e.Frame.Length%8 != 0 }

// TestCleanRoomRejectsForgeriesAlike forges the log in ways that every
// CRC and digest passes, and holds verify to the clean-room verifier:
// both reject the same segment files, or both accept.
func TestCleanRoomRejectsForgeriesAlike(t *testing.T) {
	clean, _ := sharedLog(t)
	unarchive(t, clean)
	names := logFiles(t, clean)
	var base forged
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(clean, name))
		if err != nil {
			t.Fatal(err)
		}
		base.names, base.imgs = append(base.names, name), append(base.imgs, b)
	}
	last := len(names) - 1
	if base.sealed(last) || !base.sealed(0) || !base.sealed(1) || mustSeq(t, names[0]) != 1 {
		t.Fatalf("the log does not start sealed at segment 1 and end with an empty segment: %v", names)
	}
	hour := int64(3600e9)
	put64 := func(b []byte, off int64, v int64) { le.PutUint64(b[off:], uint64(v)) }
	get64 := func(b []byte, off int64) int64 { return int64(le.Uint64(b[off:])) }
	created := func(f *forged) int64 { return get64(f.imgs[1], 32) }
	sealedAt := func(f *forged) int64 { return get64(f.footer(1), 48) }
	// stamp gives segment 2's first record the time ts computes, its
	// frame's CRC and the footer's tally and digest made good again.
	stamp := func(ts func(f *forged) int64) func(f *forged) int {
		return func(f *forged) int {
			e := f.frame(t, 1, isData)
			put64(f.imgs[1], e.Off+16, ts(f))
			f.reFrame(t, 1, e.Off)
			resealTimes(f, 1)
			return 1
		}
	}
	// footerField adds delta to the footer field of segment 2 at off, its
	// CRC made good again.
	footerField := func(off, delta int64) func(f *forged) int {
		return func(f *forged) int {
			put64(f.footer(1), off, get64(f.footer(1), off)+delta)
			f.reCRC(1)
			return 1
		}
	}
	cases := []struct {
		name  string
		forge func(f *forged) int // the first segment it changed
	}{
		{"a record stamped 2h before its segment's creation", stamp(func(f *forged) int64 { return created(f) - 2*hour })},
		{"a record stamped 30min before its segment's creation", stamp(func(f *forged) int64 { return created(f) - hour/2 })},
		{"a record stamped exactly 1h before its segment's creation", stamp(func(f *forged) int64 { return created(f) - hour })},
		{"a record stamped 1h and 1ns before its segment's creation", stamp(func(f *forged) int64 { return created(f) - hour - 1 })},
		{"a record stamped exactly 1h after its segment's sealing", stamp(func(f *forged) int64 { return sealedAt(f) + hour })},
		{"a record stamped 1h and 1ns after its segment's sealing", stamp(func(f *forged) int64 { return sealedAt(f) + hour + 1 })},
		{"sealed exactly 1h before its creation", func(f *forged) int {
			put64(f.footer(1), 48, get64(f.imgs[1], 32)-hour)
			f.reCRC(1)
			return 1
		}},
		{"END stamped a year later", func(f *forged) int {
			e := f.frame(t, 1, func(e Event) bool { return e.Kind == "end" })
			put64(f.imgs[1], e.Off+16, get64(f.imgs[1], e.Off+16)+365*24*hour)
			f.reFrame(t, 1, e.Off)
			f.reseal(1)
			return 1
		}},
		{"a PAD frame stamped", func(f *forged) int {
			e := f.frame(t, 1, func(e Event) bool { return e.Kind == "frame" && e.Frame.Type == typePad })
			put64(f.imgs[1], e.Off+16, 12345)
			f.reFrame(t, 1, e.Off)
			f.reseal(1)
			return 1
		}},
		{"a record stamped 2h after its segment's sealing", stamp(func(f *forged) int64 { return sealedAt(f) + 2*hour })},
		{"sealed 2h before its creation", func(f *forged) int {
			put64(f.footer(1), 48, get64(f.imgs[1], 32)-2*hour)
			f.reCRC(1)
			return 1
		}},
		{"non-zero padding after a payload", func(f *forged) int {
			e := f.frame(t, 1, isPadded)
			f.imgs[1][e.Off+int64(e.Frame.Length)] = 1
			f.reseal(1)
			return 1
		}},
		{"non-zero byte after END's header", func(f *forged) int {
			e := f.frame(t, 1, func(e Event) bool { return e.Kind == "end" && e.Frame.Length > 24 })
			f.imgs[1][e.Off+24] = 1
			f.reseal(1)
			return 1
		}},
		{"a PAD frame's body changed", func(f *forged) int {
			i := 0
			for i = range f.imgs[:last] {
				if hasPad(t, f, i) {
					break
				}
			}
			e := f.frame(t, i, func(e Event) bool { return e.Kind == "frame" && e.Frame.Type == typePad && e.Frame.Length > 24 })
			f.imgs[i][e.Off+24] ^= 0xFF
			f.reseal(i)
			return i
		}},
		{"footer records one more", footerField(16, 1)},
		{"footer end offset at another frame", func(f *forged) int {
			e := f.frame(t, 1, isData)
			put64(f.footer(1), 24, e.Off)
			f.reseal(1)
			return 1
		}},
		{"footer min time one less", footerField(32, -1)},
		{"footer max time one more", footerField(40, 1)},
		{"footer flag bit 1", func(f *forged) int {
			f.footer(1)[56] |= 2
			f.reCRC(1)
			return 1
		}},
		{"footer FlagRecovered toggled", func(f *forged) int {
			f.footer(1)[56] ^= flagRecovered
			f.reCRC(1)
			return 1
		}},
		{"segment 1 chained from a non-zero digest", func(f *forged) int {
			f.footer(0)[60] = 1
			f.reseal(0)
			return 0
		}},
		{"a link of the chain broken", func(f *forged) int {
			f.footer(2)[60] ^= 1
			f.reseal(2)
			return 2
		}},
		{"a digest changed", func(f *forged) int {
			f.footer(1)[92] ^= 1
			f.reCRC(1)
			return 1
		}},
		{"a DATA frame retyped PAD", func(f *forged) int {
			e := f.frame(t, 1, func(e Event) bool { return isData(e) && e.Frame.Length%8 == 0 })
			f.imgs[1][e.Off+8] = typePad
			f.reFrame(t, 1, e.Off)
			f.reseal(1)
			resealTimes(f, 1)
			return 1
		}},
		{"footer sequence changed", footerField(8, 1)},
		{"footer end offset unaligned", footerField(24, 4)},
		{"footer end offset past DataLimit", func(f *forged) int {
			put64(f.footer(1), 24, dataLimit(int64(len(f.imgs[1])))+8)
			f.reCRC(1)
			return 1
		}},
		{"header sequence changed", func(f *forged) int {
			put64(f.imgs[1], 16, get64(f.imgs[1], 16)+100)
			f.reCRC(1)
			return 1
		}},
		{"header and footer sequence changed, frames re-sealed", func(f *forged) int {
			img := f.imgs[1]
			seq := uint64(get64(img, 16) + 100)
			for _, e := range walk(img, int64(len(img)), uint64(get64(img, 16)), true) {
				f.reFrameImg(img, seq, e.Off)
			}
			put64(img, 16, int64(seq))
			put64(f.footer(1), 8, int64(seq))
			f.reseal(1)
			return 1
		}},
		{"header size changed", func(f *forged) int {
			put64(f.imgs[1], 24, int64(len(f.imgs[1]))+8)
			f.reCRC(1)
			return 1
		}},
		{"header version 2", func(f *forged) int {
			f.imgs[1][8] = 2
			f.reseal(1)
			return 1
		}},
		{"header reserved byte", func(f *forged) int {
			f.imgs[1][50] = 1
			f.reseal(1)
			return 1
		}},
		{"the empty segment created a year earlier", func(f *forged) int {
			put64(f.imgs[last], 32, get64(f.imgs[last], 32)-365*24*hour)
			f.reCRC(last)
			return last
		}},
		{"the empty segment's footer written, not its magic", func(f *forged) int {
			f.footer(last)[8] = 1
			return last
		}},
	}
	for _, c := range cases {
		f := forged{names: base.names, imgs: make([][]byte, len(base.imgs))}
		for i, img := range base.imgs {
			f.imgs[i] = bytes.Clone(img)
		}
		c.forge(&f)
		dir := t.TempDir()
		for i, name := range f.names {
			if err := os.WriteFile(filepath.Join(dir, name), f.imgs[i], 0o640); err != nil {
				t.Fatal(err)
			}
		}
		mine, ours := sameVerdict(t, c.name, dir)
		for i, s := range mine.Segments {
			compareImage(t, c.name+": "+f.names[i], f.imgs[i], s)
		}
		t.Logf("%s: flagged %v", c.name, ours)
	}
}

// resealTimes makes segment i's footer tally (records, min and max time)
// good again after a frame's change, then its digest and the chain.
func resealTimes(f *forged, i int) {
	img := f.imgs[i]
	seq := le.Uint64(img[16:])
	var n uint64
	var lo, hi int64
	for _, e := range walk(img, int64(len(img)), seq, true) {
		if isData(e) {
			if n == 0 || e.Frame.Time < lo {
				lo = e.Frame.Time
			}
			if n == 0 || e.Frame.Time > hi {
				hi = e.Frame.Time
			}
			n++
		}
	}
	ft := f.footer(i)
	le.PutUint64(ft[16:], n)
	le.PutUint64(ft[32:], uint64(lo))
	le.PutUint64(ft[40:], uint64(hi))
	f.reseal(i)
}

func hasPad(t *testing.T, f *forged, i int) bool {
	s := checkSegment(mustSeq(t, f.names[i]), f.imgs[i], nil, true, true)
	for _, e := range s.Events {
		if e.Kind == "frame" && e.Frame.Type == typePad && e.Frame.Length > 24 {
			return true
		}
	}
	return false
}
