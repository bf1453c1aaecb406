package segment

// These helpers write frames and footers into a segment image. The writer
// uses them off the hot path (abort, END, recovery, sealing) and tests use
// them to build segments; the hot path writes the same bytes inline.

// NewImage returns a zeroed image of a fresh segment with its header.
func NewImage(seq uint64, size, created int64) []byte {
	img := make([]byte, size)
	Header{Seq: seq, Size: size, Created: created}.Encode(img)
	return img
}

// PutFrame writes and commits a DATA frame (or, with a nil payload, any
// header-only frame of that exact length) at off and returns the offset
// after it.
func PutFrame(img []byte, seq uint64, off int64, typ byte, ts int64, payload []byte) int64 {
	length := int32(FrameHeaderSize + len(payload))
	copy(img[off+FrameHeaderSize:], payload)
	PutFrameHeader(img[off:], typ, length, ts)
	PutFrameCRC(img[off:], FrameSeed(seq), off)
	StoreLength(img, off, length)
	return off + Align(int64(length))
}

// PutPad turns the extent [off, off+ext) into a committed PAD frame. The
// bytes after its header are left as they are: readers skip them.
func PutPad(img []byte, seq uint64, off, ext int64) {
	// Claim first, as PutEnd does: recovery pads zero gaps, and one
	// killed before the commit store must leave a reserved slot for the
	// next recovery, not header bytes behind a zero word (torn).
	StoreLength(img, off, -int32(ext))
	PutFrameHeader(img[off:], TypePad, int32(ext), 0)
	PutFrameCRC(img[off:], FrameSeed(seq), off)
	StoreLength(img, off, int32(ext))
}

// PutEnd writes the END frame at off, covering the rest of the record area.
func PutEnd(img []byte, seq uint64, off, ts int64) {
	length := int32(RecordLimit(int64(len(img))) - off)
	// Claim first, as every writer of a frame does: a crash in the middle
	// then leaves a reserved slot, not one that reads as damaged.
	StoreLength(img, off, -length)
	PutFrameHeader(img[off:], TypeEnd, length, ts)
	PutFrameCRC(img[off:], FrameSeed(seq), off)
	StoreLength(img, off, length)
}

// Seal computes and writes the footer of a finished segment whose frames
// are all committed up to and including the END frame, and returns it.
// It fails, writing nothing, if the walk finds anything but committed
// frames before END.
func Seal(img []byte, prev [DigestSize]byte, flags uint32, sealedAt int64) (Footer, error) {
	f, err := SealFooter(img, prev, flags, sealedAt)
	if err == nil {
		f.Encode(img[int64(len(img))-FooterSize:])
	}
	return f, err
}

// SealFooter is Seal without the write: the footer, for a caller that
// makes the records durable before the footer reaches the file.
func SealFooter(img []byte, prev [DigestSize]byte, flags uint32, sealedAt int64) (Footer, error) {
	h, err := DecodeHeader(img)
	if err != nil {
		return Footer{}, err
	}
	if int64(len(img)) != h.Size {
		return Footer{}, corrupt(0, "image is %d bytes, header says %d", len(img), h.Size)
	}
	f := Footer{Seq: h.Seq, PrevDigest: prev, SealedAt: sealedAt, Flags: flags, EndOffset: -1}
	var bad error
	stop := Walk(img, h.Seq, HeaderSize, Quiescent, func(ev Event) bool {
		switch ev.Kind {
		case EvFrame:
			if ev.Frame.Type == TypeData {
				f.Records++
				// Both bounds start from the first record: timestamps may
				// be negative (a clock set before 1970).
				if f.Records == 1 || ev.Frame.Time < f.MinTime {
					f.MinTime = ev.Frame.Time
				}
				if f.Records == 1 || ev.Frame.Time > f.MaxTime {
					f.MaxTime = ev.Frame.Time
				}
			}
			return true
		case EvEnd:
			f.EndOffset = ev.Offset
			return false
		}
		bad = corrupt(ev.Offset, "cannot seal: %s", ev.Kind) // the offset is the error's
		return false
	})
	if bad != nil {
		return Footer{}, bad
	}
	if f.EndOffset < 0 {
		// Walk reports every other way it stops short of an END frame
		// (the tail, damage): this is the walk ending without one all
		// the same, and where it stopped is where the END had to be.
		return Footer{}, corrupt(stop, "cannot seal: no END frame")
	}
	f.Digest = Digest(prev, img, f.EndOffset)
	return f, nil
}
