package reader

import (
	"errors"
	"io/fs"
	"os"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A closing writer removes the files it made ahead and never used, and
// the next writer makes those numbers again as new files (FORMAT.md
// section 1); a writer also removes and makes again a file it could not
// map. A reader in such a file (placed there by At, or waiting At a
// number past the end that a writer then made ahead) holds the removed
// file's mapping, which no writer writes to any more: it waited there,
// then passed it as unfinished once a later segment held frames, and
// never read what the file now at that name holds. Within one log only a
// file that never held a frame is removed and made again (see at), so a
// reader that has found nothing in its segment looks at the name: a stat
// a poll, and a segment is opened again only when the name has another
// file.

// blank reports whether the reader has found nothing in c yet: no frame
// and no damage, and no footer saying it is finished.
func blank(c *seg) bool {
	return c.off == segment.HeaderSize && !c.footer && !c.img.Archived
}

// remade moves the reader from c, a segment in which it has found nothing
// yet, to the file now at c's name, if that is another than the one c
// maps. It returns true when the reader is to look again: in that file,
// or, if it turned out unreadable or gone with later segments listed
// (reported as openSeg reports them), in the next segment; and when it
// stopped (r.err). It returns false while c's name still has c's file,
// or none: a writer makes the name again before any later segment holds
// frames, and the old mapping's zeros say what the new file's would.
// With later (the caller found a later segment holding frames, or c
// quiet), c's name gone is removal by something other than a writer
// (retention, a hand): c is reported and passed as any listed segment
// found gone when opened (notFound), not as the unfinished segment its
// removed file's zeros would make it.
func (r *Reader) remade(c *seg, later bool) bool {
	if r.single != "" || !blank(c) {
		return false
	}
	fi, err := os.Lstat(c.path)
	switch {
	case err == nil && !c.img.Maps(fi):
	case later && errors.Is(err, fs.ErrNotExist):
	default:
		return false
	}
	// A fresh listing for the look for a log begun again, taken while c
	// is still the segment the reader is in: a new log makes the numbers
	// again too, and the look tells it by what is below c (restarted).
	if r.relist() != nil {
		return r.err != nil
	}
	n, gone := r.openSeg(segment.Entry{Seq: c.seq, Path: c.path}, c.seq-1, true)
	if n == nil && gone {
		return false // removed again since the stat: wait in c as before
	}
	if n != nil {
		n.min = c.min // an At or After start in this segment holds for the file now there
	}
	if err == nil && r.startsAnew(c) {
		r.startedAt(r.markNow(c.seq, n))
	}
	_ = r.closeCur()
	r.cur = n
	if n != nil && n.quiet {
		r.startPrefetch(n.seq)
	}
	return true
}
