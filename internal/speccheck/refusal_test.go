package speccheck

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// recoveryRefuses is section 8, steps 3.2, 3.4 and 3.5, read from the
// document alone: where recovery leaves an unsealed segment (its header
// accepted, step 3.1; the file all read) as it is, given its Quiescent
// walk evs, or -1 if it finishes and seals it. A torn region refuses it
// unless it is a torn tail (it runs to RecordLimit) whose PAD, covering
// every non-zero byte, aligned, at least a frame header, ends by
// DataLimit; an END claim refuses it at a non-zero byte behind its
// header.
func recoveryRefuses(img []byte, size int64, evs []Event) int64 {
	rl := recordLimit(size)
	for _, e := range evs {
		switch e.Kind {
		case "torn":
			if e.Off+e.Len != rl {
				return e.Off
			}
			last := rl - 1
			for last >= e.Off && img[last] == 0 {
				last--
			}
			if e.Off+max(align(last+1-e.Off), frameHdrSize) > dataLimit(size) {
				return e.Off
			}
		case "reserved":
			if e.Off+e.Len != rl {
				continue
			}
			for p := e.Off + frameHdrSize; p < rl; p++ {
				if img[p] != 0 {
					return p
				}
			}
		}
	}
	return -1
}

// compareRefusal holds segment.Refusal to recoveryRefuses on img, the
// segment file seq of a log, unsealed (s, its clean-room check). It
// reports whether the walk held a torn tail that recovery finishes.
func compareRefusal(t *testing.T, label string, img []byte, seq uint64, s *Segment) bool {
	t.Helper()
	size := int64(len(img))
	if s.Sealed || len(s.Events) == 0 || int64(s.Header.Size) != size || s.Header.Seq != seq {
		return false // a header recovery refuses (step 3.1): not this
	}
	mine := recoveryRefuses(img, size, s.Events)
	path := segment.FileName(seq)
	h, herr := segment.DecodeHeader(img)
	r := segment.RecoveryRefusal(path, h, herr, size, img, size)
	if r.Refused() != nil {
		t.Errorf("%s: header refused (%v), clean-room accepts it", label, r.Refused())
		return false
	}
	tail := false
	segment.Walk(img, seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		if why := r.Event(&ev); why != nil {
			return false
		}
		if ev.Kind == segment.EvTorn {
			tail = true
		}
		return true
	})
	theirs := int64(-1)
	if ce := r.Refused(); ce != nil {
		theirs = ce.Offset
	}
	if theirs != mine {
		t.Errorf("%s: recovery refuses at %d (%v), clean-room at %d; events %+v", label, theirs, r.Refused(), mine, s.Events)
	}
	return tail && theirs < 0
}

// TestCleanRoomJudgesTornTailsAlike: the segment files of a real log,
// made unsealed and ending in their last frame (END and footer gone),
// that frame torn as a power cut tears it (its payload's page lost, its
// header's, a bit flipped), with stray bytes after it or none, some in
// the last 24 bytes before RecordLimit (no room for END), and random
// damage besides: pkg/segment's recovery judgment (segment.Refusal)
// agrees with the clean-room one from FORMAT.md, and both finish torn
// tails.
func TestCleanRoomJudgesTornTailsAlike(t *testing.T) {
	dir, _ := sharedLog(t)
	rng := rand.New(rand.NewPCG(5, 6))
	var tails, n int
	for _, sf := range segmentFiles(t, dir) {
		name, orig, seq := sf.name, sf.img, sf.seq
		size := int64(len(orig))
		var frames []int64 // the DATA frames
		var end int64 = -1
		for _, e := range checkSegment(seq, orig, nil, true, true).Events {
			switch {
			case isData(e):
				frames = append(frames, e.Off)
			case e.Kind == "end":
				end = e.Off
			}
		}
		if len(frames) < 2 || end < 0 {
			continue
		}
		last := frames[len(frames)-1]
		for i := range 40 {
			img := append([]byte(nil), orig...)
			clear(img[end:]) // END and footer gone: the writer died
			switch i % 4 {
			case 0: // the payload's page lost
				clear(img[last+frameHdrSize+rng.Int64N(end-last-frameHdrSize) : end])
			case 1: // the commit word's page lost
				clear(img[last : last+frameHdrSize])
			case 2:
				img[last+rng.Int64N(end-last)] ^= 1 << rng.IntN(8)
			case 3: // a torn frame before the last, an intact one after it
				img[frames[len(frames)-2]+frameHdrSize] ^= 0xff
			}
			switch rng.IntN(4) {
			case 0: // a stray byte further on
				img[end+rng.Int64N(recordLimit(size)-end)] = 0x5a
			case 1: // one in the last 24 bytes: no room for END
				img[dataLimit(size)+rng.Int64N(endRoom)] = 0x5a
			case 2:
				damage(rng, img, frames)
			}
			s := checkSegment(seq, img, nil, true, true)
			if compareRefusal(t, fmt.Sprintf("%s tear %d", name, i), img, seq, s) {
				tails++
			}
			n++
		}
	}
	if n == 0 || tails == 0 {
		t.Fatalf("%d images judged, %d torn tails finished: nothing tested", n, tails)
	}
	t.Logf("%d images judged, %d torn tails finished", n, tails)
}
