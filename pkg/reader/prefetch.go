package reader

import (
	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// prefetch opens the segment after the one being read on another
// goroutine, so that a replay does not wait for what opening costs: the
// page tables of a fresh mapping (populating them is as slow as checking
// every frame's CRC) or the decompression of an archive (not while the
// current segment is an archive too). At most one is in flight; its image
// is handed over when the reader gets to that segment, and closed
// otherwise.
type prefetch struct {
	seq  uint64
	path string
	done chan struct{}
	im   *segment.Image
	err  error
}

// startPrefetch begins opening the listed segment after seq, if any.
func (r *Reader) startPrefetch(seq uint64) {
	if r.pre != nil || r.single != "" {
		return
	}
	i := r.entryAfter(seq)
	if i == len(r.list) {
		return
	}
	e := r.list[i]
	if e.Archived && r.cur != nil && r.cur.img.Archived {
		// An archive is opened by decompressing it whole: two at once
		// would break the promise of one decompressed segment per reader.
		return
	}
	p := &prefetch{seq: e.Seq, path: e.Path, done: make(chan struct{})}
	r.pre = p
	go func() {
		defer close(p.done)
		p.im, p.err = r.openImage(e)
		if p.err == nil && !p.im.Archived && p.im.HeaderErr == nil {
			// A fault here (the file shrank) just ends the populate call
			// with an error: MADV_POPULATE_READ reports, never signals.
			_ = unix.Madvise(p.im.Data[:p.im.Valid()], unix.MADV_POPULATE_READ) // never the padding of a short file
		}
	}()
}

// takePrefetch returns the prefetched image of e, or ok false (after
// releasing a prefetch of another segment) if there is none.
func (r *Reader) takePrefetch(e segment.Entry) (im *segment.Image, err error, ok bool) {
	p := r.pre
	if p == nil {
		return nil, nil, false
	}
	r.pre = nil
	<-p.done
	if p.seq == e.Seq && p.path == e.Path {
		return p.im, p.err, true
	}
	if p.err == nil {
		p.im.Close()
	}
	return nil, nil, false
}

// dropPrefetch releases a prefetch in flight.
func (r *Reader) dropPrefetch() {
	if p := r.pre; p != nil {
		r.pre = nil
		<-p.done
		if p.err == nil {
			p.im.Close()
		}
	}
}
