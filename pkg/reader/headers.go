package reader

import (
	"os"
	"syscall"

	"github.com/auditseg/auditseg/pkg/segment"
)

// An idle follower looks for a log begun again at every listing it takes,
// and a poll may take two (unpark's, then atTail's), each reading the
// header of the segment it is at and maybe of the oldest one: files that
// do not change while it waits. readHeader reads a header once per file.

// fileID tells one file at a path from another put there since: the
// header is written once, when the file is made, so a file with the same
// inode, size, mtime and ctime still has the header read from it.
type fileID struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, true
}

type headerSeen struct {
	id fileID
	h  segment.Header
}

// readHeader is segment.ReadHeader(p) under the reader's context, without
// reading the file again when it is the current segment's (mapped: its
// inode cannot be reused while the mapping holds it) or unchanged since a
// read here. The file is looked at before it is read: one replaced in
// between is cached under the first file's identity, which the path no
// longer has, so it is read again next time. A read whose lease wait the
// context ended stops the reader (cancelled): its callers take a failed
// read for no verdict, which a stopped reader acts on no more.
func (r *Reader) readHeader(p string) (segment.Header, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return segment.Header{}, err
	}
	if c := r.cur; c != nil && c.path == p && c.img.HeaderErr == nil && c.img.Maps(fi) {
		return c.img.Header, nil
	}
	id, ok := idOf(fi)
	if e, hit := r.headers[p]; ok && hit && e.id == id {
		return e.h, nil
	}
	h, err := segment.ReadHeaderContext(r.ctx, p)
	if err == nil && ok {
		r.cacheHeader(p, id, h)
	}
	r.cancelled(err)
	return h, err
}

// keepHeader caches the header of im, segment m's image, for readHeader
// as the reader leaves it, if its path still names the file im maps: the
// restart look reads the header of the segment the reader left at each
// listing and each segment it opens.
func (r *Reader) keepHeader(m mark, im *segment.Image) {
	if !m.ok || r.single != "" {
		return
	}
	fi, err := os.Lstat(im.Path)
	if err != nil || !im.Maps(fi) {
		return
	}
	if id, ok := idOf(fi); ok {
		r.cacheHeader(im.Path, id, im.Header)
	}
}

func (r *Reader) cacheHeader(p string, id fileID, h segment.Header) {
	if r.headers == nil || len(r.headers) >= 16 {
		r.headers = map[string]headerSeen{}
	}
	r.headers[p] = headerSeen{id, h}
}
