package reader

import (
	"fmt"
	"path/filepath"

	"github.com/auditseg/auditseg/pkg/segment"
)

// DamageKind says what a Damage report is about.
type DamageKind uint8

const (
	// DamageTorn: a committed frame whose CRC fails or whose header is
	// impossible. The reader skipped Len bytes, up to the next frame whose
	// CRC matches (or the end of the segment's record area). Zeros where a
	// sealed segment's footer says its END frame is, or committed frames
	// before it, are torn too: Offset is where the zeros start. So are the
	// zeros that end a segment with neither END frame nor footer when a
	// later segment is sealed (verify's missing-end): no writer left it
	// unfinished, as segments are sealed in order.
	DamageTorn DamageKind = iota + 1
	// DamageReserved: a frame reserved and never committed, found while no
	// writer holds the log (its writer died). Len bytes skipped. An END
	// claim (a reservation up to the record limit) with a non-zero byte
	// behind its header is DamageTorn instead: recovery does not finish
	// it (segment.EndClaim).
	DamageReserved
	// DamageGap: Len zero bytes followed by a frame: space claimed by a
	// writer that died before storing its claim. Skipped.
	DamageGap
	// DamageUnfinished: the segment ends at Offset without an END frame
	// and a later segment exists, none of them sealed: its writer died
	// before finishing it. Offset is 64 for one with nothing after its
	// header (a segment the writer had rotated into or created ahead),
	// which writer.Open seals too, as it is not the newest: verify
	// reports it alike. The reader continues with the next segment.
	// A dead writer's segment without a footer whose last frame is torn,
	// nothing intact after it (a torn tail: committed, its pages cut
	// apart by a power loss before its Append returned), is reported so
	// too, at the torn frame, Err saying so: writer.Open puts it under
	// a PAD and finishes the segment (FORMAT.md section 8, step 3.5).
	//
	// DamageReserved, DamageGap and DamageUnfinished are reported only in
	// a segment that writer.Open's recovery finishes and seals. In one it
	// leaves unsealed, as it is (a header that disagrees with the file, a
	// torn committed frame, an END claim with a non-zero byte behind its
	// header: FORMAT.md section 8, steps 3.1, 3.2, 3.4), or that it never
	// looks at (one before a sealed segment), they are
	// DamageTorn, Err saying what they are and why recovery leaves them,
	// those before the frame that decides it included: verify calls them
	// fatal too (unfinished, missing-end).
	DamageUnfinished
	// DamageSegment: the segment file cannot be used as it is: its header
	// is unusable (its frames are then read under the sequence number of
	// the file name, each checked by its CRC; a file whose size is not a
	// segment's is skipped), the file disagrees with its
	// header, its footer is damaged, or it could not be opened or changed
	// while it was read. Err says which, with the file and offset. For a
	// file that shrank while it was read, Offset is where the records not
	// read start, and Err (a *segment.ChangedError) names the offset that
	// had no data, at or after it. For a record Options.Bulk's walk
	// checked and found changed when it copied the payload (Err wraps
	// segment.ErrChangedAfterCheck, as Record.AppendPayload's error for a
	// record Next returned), Offset and Len are that record's frame, and
	// reading goes on after it as the file is now. For
	// an archive that does not decompress, Offset is the segment offset
	// from which nothing decodes (Err, a *segment.ArchiveDamage, also
	// names the damaged block's offset in the archive file); the records
	// before it that pass their CRC are read, unless nothing of the
	// segment's frames decodes, when it is skipped whole.
	DamageSegment
	// DamageMissing: segment numbers Seq to Seq+Len-1 are absent from the
	// directory between two segments that are present (the one before
	// them, or an older one, still there when the reader came past them),
	// whether the reader had listed them or not. A number whose name
	// something other than a regular file takes (a directory, a FIFO) is
	// not missing: it is a segment that cannot be read, DamageSegment
	// (segment.Entry.NotRegular), and the reader never opens it.
	DamageMissing
	// DamageRemoved is not damage of the log: segments Seq to Seq+Len-1
	// were removed by retention (or by hand) while the log was read, so
	// their records were not read; the reader continues with the next
	// segment. Either segment Seq was listed, but when the reader came to
	// open it (or, in it and having found nothing there, to pass it)
	// neither its file (Path, as listed) nor its archive was in the
	// directory any more, nor was the segment before it or any older
	// one (else it is DamageMissing), and later segments were (the numbers after it up to
	// the first segment listed then are gone too, whether the reader had
	// listed them or not); or the numbers are a hole after the segment
	// the reader passed last, which is gone as well, with every older one
	// (Path is then segment Seq's .seg name). See the package doc. Only a file not found
	// counts so: one that is there and cannot be opened is DamageSegment.
	DamageRemoved
)

var damageNames = [...]string{"", "torn", "reserved", "gap", "unfinished", "segment", "missing", "removed"}

func (k DamageKind) String() string {
	if int(k) < len(damageNames) && k != 0 {
		return damageNames[k]
	}
	return fmt.Sprintf("DamageKind(%d)", uint8(k))
}

// CrashLeftover reports whether damage of this kind is what a writer that
// died (kill -9, power loss) normally leaves behind, rather than bytes that
// were corrupted: reserved frames, zero gaps and unfinished segments. The
// next writer's recovery turns them into padding; they cost no record that
// was ever committed. Those of a segment recovery leaves unsealed are
// reported as DamageTorn instead (see DamageUnfinished).
func (k DamageKind) CrashLeftover() bool {
	return k == DamageReserved || k == DamageGap || k == DamageUnfinished
}

// Damage describes something the reader skipped. It is delivered to
// Options.OnDamage, or returned by Err (as a *Damage) when Options.Strict
// is set.
type Damage struct {
	Kind   DamageKind
	Path   string // the segment file (the directory for DamageMissing)
	Seq    uint64 // the segment sequence number
	Offset int64  // file offset where the damage starts
	Len    int64  // bytes skipped (segments, for DamageMissing and DamageRemoved)
	// Err is the decoder's finding (a *segment.CorruptError naming the
	// file and offset) for DamageTorn and DamageSegment, or why the
	// segment could not be opened (DamageSegment); for DamageUnfinished
	// at a torn tail, what the walk found there (see DamageUnfinished);
	// else nil.
	Err error

	zeros bool // see Zeros
}

// Zeros reports whether d is a torn region or a gap that starts with a
// zero commit word: no frame was ever stored at Offset, or the bytes read
// as zeros now. A file cut inside a page reads as zeros from the cut to
// the end of that page, so after a record that changed after its check
// (Record.AppendPayload, or the bulk replay's DamageSegment), such damage
// where the reader's walk resumes
// may be the same cut seen again, not damage of its own.
func (d *Damage) Zeros() bool { return d.zeros }

func (d *Damage) Error() string {
	switch d.Kind {
	case DamageTorn:
		return fmt.Sprintf("%v; skipped %d bytes", d.Err, d.Len)
	case DamageReserved:
		return fmt.Sprintf("%s: offset %d: frame reserved but never committed and no writer holds the log; skipped %d bytes", d.Path, d.Offset, d.Len)
	case DamageGap:
		return fmt.Sprintf("%s: offset %d: %d zero bytes claimed by a writer that died before writing them; skipped", d.Path, d.Offset, d.Len)
	case DamageUnfinished:
		if d.Err != nil { // a torn tail
			return fmt.Sprintf("%v; writer.Open puts it under a PAD and finishes the segment; skipped %d bytes, continuing with the next segment", d.Err, d.Len)
		}
		// Reported only where recovery finishes the segment (a dead
		// writer's, the bytes after Offset all zero): nothing committed
		// is missing there, and it may be the log's last segment.
		return fmt.Sprintf("%s: offset %d: segment ends without an END frame: its writer died before finishing it (the %d bytes after it, to the record limit, were never written; the next writer.Open seals it)", d.Path, d.Offset, d.Len)
	case DamageMissing:
		if d.Len == 1 {
			return fmt.Sprintf("%s: segment %d is missing", d.Path, d.Seq)
		}
		return fmt.Sprintf("%s: segments %d to %d are missing", d.Path, d.Seq, d.Seq+uint64(d.Len)-1)
	case DamageRemoved:
		if d.Len > 1 {
			return fmt.Sprintf("%s: segments %d to %d removed (retention?) before they were read: their records were not read; continuing with the next segment", filepath.Dir(d.Path), d.Seq, d.Seq+uint64(d.Len)-1)
		}
		return fmt.Sprintf("%s: segment removed (retention?) before it was read: its records were not read; continuing with the next segment", d.Path)
	}
	if d.Err != nil {
		return d.Err.Error()
	}
	return fmt.Sprintf("%s: offset %d: %s damage", d.Path, d.Offset, d.Kind)
}

// Unwrap returns the decoder's error, so errors.Is(err, segment.ErrCorrupt)
// holds for torn frames and unusable segments.
func (d *Damage) Unwrap() error { return d.Err }

// report delivers a damage report, or stops the reader under Strict.
// It returns false when the reader must stop: also, without a report,
// once Close was called (from another goroutine during a Wait: OnDamage
// is not called after that Close returned), and once the reader's
// context stopped it in a lease's wait (cancelled): what it was about to
// report was judged without that file read.
func (r *Reader) report(d Damage) bool {
	if r.stopForClose() || r.endedBy(r.err) {
		return false
	}
	if d.Err != nil {
		d.Err = segment.WithPath(d.Err, d.Path)
	}
	r.damaged++
	if r.opts.OnDamage != nil && (!r.onDamage(d) || r.stopForClose()) {
		return false
	}
	if r.opts.Strict {
		r.stop(&d)
		return false
	}
	return true
}

// onDamage calls OnDamage, marked so that a Close from it leaves the
// segment to the decoder (enter), and reports whether it did: not once
// Close was called.
func (r *Reader) onDamage(d Damage) bool {
	if !r.enter() {
		return false
	}
	defer r.leave()
	r.opts.OnDamage(d)
	return true
}
