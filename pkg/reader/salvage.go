package reader

import (
	"errors"
	"fmt"

	"github.com/auditseg/auditseg/pkg/segment"
)

// openSalvaging takes what segment.OpenImage returned for path, and when
// that is an archive's damage, reads what segment.OpenSalvaged can of it
// instead: each record's CRC vouches for it. damage is then the archive's
// damage, for the caller to report once. The second open waits for a
// lease's break under the reader's context too: the error of a wait it
// ended is returned, for cancelled to stop the reader with, not the
// archive's damage.
func (r *Reader) openSalvaging(path string, im *segment.Image, err error) (_ *segment.Image, damage, _ error) {
	var ad *segment.ArchiveDamage
	if !errors.As(err, &ad) {
		return im, nil, err
	}
	sim, serr := segment.OpenSalvagedContext(r.ctx, path)
	if r.endedBy(serr) {
		return nil, nil, serr
	}
	if serr != nil {
		return nil, nil, err
	}
	return sim, err, nil
}

// salvagedRecords says which records of a salvaged archive are read.
func salvagedRecords(im *segment.Image) string {
	if im.Lost() > 0 {
		return fmt.Sprintf("its records before offset %d are read one by one, each checked by its CRC", im.Lost())
	}
	return "its records are read one by one, each checked by its CRC"
}

// cutAtLoss ends the walk of an archive read as far as it decodes (its
// image's Lost > 0) before the first event the loss cuts short: a frame
// whose bytes reach past Lost (torn, to the walk), or zeros that run into it (the
// tail). What lies there was reported with the archive's damage when the
// segment was opened; reported again it would be counted twice. The
// segment ends there, as at its END (noStop with nothing buffered
// finishes it).
func (r *Reader) cutAtLoss(c *seg, stop segment.Event) segment.Event {
	lost := c.img.Lost()
	if lost == 0 {
		return stop
	}
	for i := range r.evs {
		if ev := &r.evs[i]; ev.Kind != segment.EvFrame && ev.Offset+ev.Len > lost {
			r.evs = r.evs[:i]
			return segment.Event{Kind: noStop}
		}
	}
	if stop.Kind != segment.EvEnd {
		stop.Kind = noStop
	}
	return stop
}
