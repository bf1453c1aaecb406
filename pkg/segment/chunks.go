package segment

import (
	"io"
	"sync/atomic"
	"time"
)

// A pass over every byte of a mapped segment file (verify's check,
// compress-finished's compression and its comparison) can read each chunk
// of it as a view of the mapping or as a copy read with pread(2) into a
// small buffer. Which is cheaper depends on what the first touch of a
// mapped page costs, and that depends on the machine and on how the
// file's pages sit in the page cache. On one guest kernel we ran on it
// cost ~1-5 µs a 4 KiB page (the hypervisor's shadow page tables),
// against ~0.35 µs for the kernel's copy. On a later one (fc-v669), per
// 4 KiB: ~10-15 ns for a segment the writer left in 2 MiB folios, ~300 ns
// for one read back from the disk in smaller folios, against ~500 ns to
// copy. So Chunks, by default, reads a file's first chunk as a view
// whose pages are touched, timed, its second as a copy, timed, and the
// rest the cheaper way. What a pass has read through the mapping is
// released behind it (Release), so a file read through views does not
// stay resident in the reader's address space.

// ReadMode is how Chunks reads a file.
type ReadMode uint8

const (
	// ReadProbe times a view against a copy on the first two chunks and
	// reads the rest the cheaper way.
	ReadProbe ReadMode = iota
	// ReadViews reads every chunk as a view of the mapping.
	ReadViews
	// ReadCopies reads every chunk as a copy.
	ReadCopies
	// probeCopy: ReadProbe after its view, timing its copy.
	probeCopy
)

// Chunks reads a segment file's bytes a chunk of at most len(buf) at a
// time, each a view of the file's mapping or a copy in buf (see above).
// One Chunks serves one pass of one goroutine.
type Chunks struct {
	im   *Image // the file's mapping; nil: copies only
	src  io.ReaderAt
	buf  []byte
	mode ReadMode
	// viewCost is what mapping the first chunk cost, per byte, while
	// mode is probeCopy.
	viewCost float64
	freed    int64 // the mapping is released below this offset
}

// NewChunks returns Chunks reading the file that src reads and im maps
// (nil: copies only), a chunk of at most len(buf) bytes at a time, as
// mode says. Views of an image that does not map its file (a copy in
// memory) cost nothing and are never released. An empty buf is replaced
// by one of 64 KiB.
func NewChunks(im *Image, src io.ReaderAt, buf []byte, mode ReadMode) *Chunks {
	if im == nil {
		mode = ReadCopies
	}
	if len(buf) == 0 {
		buf = make([]byte, 64<<10)
	}
	return &Chunks{im: im, src: src, buf: buf, mode: mode}
}

// Size is the largest chunk Read returns.
func (c *Chunks) Size() int { return len(c.buf) }

// Read returns the file's bytes from off on, at most n and at most
// Size(): a view of the mapping, or a copy in the buffer, valid until the
// next Read. A copy may be short, with the read's error (nil or io.EOF
// at the end of the file); a view reaches at most the end of the mapping.
// A view of a file cut short faults when it is read (Guard).
func (c *Chunks) Read(off int64, n int) ([]byte, error) {
	n = min(n, len(c.buf))
	if n <= 0 || off < 0 {
		return nil, nil
	}
	if c.mode == ReadProbe || c.mode == ReadViews {
		if off >= int64(len(c.im.Data)) {
			return nil, io.EOF
		}
		v := c.im.Data[off:min(off+int64(n), int64(len(c.im.Data)))]
		if c.mode == ReadProbe {
			c.viewCost = float64(touchPages(v)) / float64(len(v))
			c.mode = probeCopy
		}
		return v, nil
	}
	start := time.Now()
	m, err := c.src.ReadAt(c.buf[:n], off)
	if c.mode == probeCopy && m > 0 {
		c.mode = ReadCopies
		if c.viewCost <= float64(time.Since(start))/float64(m) {
			c.mode = ReadViews
		}
	}
	return c.buf[:m], err
}

// ReadFull is Read for a caller that needs all n bytes (n ≤ Size()): a
// copy cut short is an error naming the file at path and the offset, as
// ReadAt's (while says what was being done).
func (c *Chunks) ReadFull(path, while string, off int64, n int) ([]byte, error) {
	b, err := c.Read(off, n)
	if len(b) == n {
		return b, nil
	}
	return nil, shortRead(path, while, off+int64(len(b)), err)
}

// Release gives back the mapping below off (Image.Release): views, and
// whatever else the pass read through the mapping. A pass calls it as it
// goes, once it is done with the bytes below off.
func (c *Chunks) Release(off int64) {
	if c.im != nil && off > c.freed {
		c.freed = c.im.Release(c.freed, off)
	}
}

// Released returns where the released range ends: whole blocks are
// released (ReleaseBlock), so the last offset given to Release or less.
func (c *Chunks) Released() int64 { return c.freed }

// Viewing reports whether Read returns views now.
func (c *Chunks) Viewing() bool { return c.mode == ReadViews || c.mode == ReadProbe }

// touched keeps touchPages' loads from being optimised away.
var touched atomic.Uint32

// touchPages reads a byte of every 4 KiB of p, mapping it as a pass
// reading it would, and returns how long that took.
func touchPages(p []byte) time.Duration {
	start := time.Now()
	var x byte
	for i := 0; i < len(p); i += 4096 {
		x += p[i]
	}
	touched.Add(uint32(x))
	return time.Since(start)
}
