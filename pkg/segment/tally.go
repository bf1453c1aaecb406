package segment

import "math"

// Tally follows the commit words of frames a writer wrote itself, without
// checking CRCs, to find when every frame up to END is committed and to
// collect what the footer needs. It is how the writer seals at the speed of
// reading length words; Seal (which walks with CRC checks) is for segments
// whose writer is gone.
type Tally struct {
	Off     int64 // next frame to look at
	Records uint64
	MinTime int64
	MaxTime int64
	End     bool // Off is the committed END frame
}

// NewTally starts a tally at the first frame.
func NewTally() Tally { return Tally{Off: HeaderSize} }

// Advance moves over committed frames from t.Off and reports whether the
// END frame has been reached. It stops at the first frame that is not
// committed yet (or not plausible, which the writer treats as not yet).
func (t *Tally) Advance(img []byte) bool { return t.AdvanceTo(img, math.MaxInt64) }

// AdvanceTo is Advance stopping also at the first frame that starts at or
// after stop, so that a caller can hash each stretch it passed while the
// stretch is still in the CPU's cache.
func (t *Tally) AdvanceTo(img []byte, stop int64) bool {
	limit := RecordLimit(int64(len(img)))
	for !t.End && t.Off+FrameHeaderSize <= limit && t.Off < stop {
		l := LoadLength(img, t.Off)
		if l <= 0 {
			return false
		}
		ext := Align(int64(l))
		if t.Off+ext > limit {
			return false
		}
		switch img[t.Off+8] {
		case TypeEnd:
			t.End = true
			return true
		case TypeData:
			ts := int64(le.Uint64(img[t.Off+16:]))
			if t.Records == 0 || ts < t.MinTime {
				t.MinTime = ts
			}
			if t.Records == 0 || ts > t.MaxTime { // timestamps may be negative
				t.MaxTime = ts
			}
			t.Records++
		}
		t.Off += ext
	}
	return t.End
}

// TalliedFooter returns the footer of a segment whose tally reached END,
// its digest finished from d (which may already have hashed a committed
// prefix; it must not be used again). It writes nothing: the writer makes
// the records durable before the footer reaches the file.
func TalliedFooter(img []byte, seq uint64, t Tally, d *DigestStream, flags uint32, sealedAt int64) Footer {
	f := Footer{
		Seq: seq, Records: t.Records, EndOffset: t.Off, MinTime: t.MinTime, MaxTime: t.MaxTime,
		SealedAt: sealedAt, Flags: flags, PrevDigest: d.Prev(),
	}
	f.Digest = d.Sum(img, t.Off)
	return f
}

// RecordTally is what a check of a segment's DATA frames gathers besides
// their CRCs (ScanCheckIn, and Add for the frames a walk hands over): the
// footer's record count and time range, and the range of timestamps a
// record passes without a closer look.
type RecordTally struct {
	Records          uint64
	MinTime, MaxTime int64 // the records' extremes, once Records > 0
	TimeLo, TimeHi   int64 // timestamps accepted without a closer look
}

// NewRecordTally starts a tally accepting every timestamp.
func NewRecordTally() RecordTally {
	return RecordTally{MinTime: math.MaxInt64, MaxTime: math.MinInt64, TimeLo: math.MinInt64, TimeHi: math.MaxInt64}
}

// Add counts the record ending at end, stamped ts, and reports whether
// what its CRC does not cover passes: its timestamp is in [TimeLo, TimeHi]
// and its alignment padding, covered only by the digest, is zero. win
// holds the segment's bytes from base on; padding outside it does not
// pass (the caller looks closer). Small enough to inline.
func (t *RecordTally) Add(win []byte, base, end, ts int64) bool {
	t.Records++
	t.MinTime, t.MaxTime = min(t.MinTime, ts), max(t.MaxTime, ts)
	return ts >= t.TimeLo && ts <= t.TimeHi && PaddingZero(win, end-base)
}
