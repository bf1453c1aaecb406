package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// Archives are written and read back with direct I/O (O_DIRECT) where the
// file system supports it, for two reasons:
//
//   - The comparison that allows an original to be removed then reads
//     what the device returns, not the page cache's copy of what was
//     written: a write the device lost or mangled is caught before the
//     only other copy goes.
//   - An archive is cold data. Through the page cache it would take
//     memory the kernel must first find and fill (on the VMs we measured,
//     copying 220 MB of archives into fresh page-cache pages cost ~8 % of
//     compress-finished's CPU), and then push out hotter pages.
//
// Direct I/O needs the buffer, offset and length aligned to the device's
// logical block: the output buffers (outBuf) are 2 MiB aligned, and only the
// directAlign-aligned prefix of an archive is written directly; its last
// partial block goes through the page cache, then the file is fsynced as
// before. Where the file system refuses O_DIRECT (tmpfs on older kernels,
// some network file systems), everything goes through the page cache.

// directAlign is the alignment direct I/O is done at: a multiple of every
// common logical block size (512 B, 4 KiB).
const directAlign = 4096

// setDirect turns O_DIRECT on or off for f.
func setDirect(f *os.File, on bool) error {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, fl)
	return err
}

// writeArchive writes b, which starts directAlign-aligned in memory, to
// the start of the new file f: the aligned prefix directly where possible,
// the rest through the page cache. It does not fsync.
func writeArchive(f *os.File, b []byte) error {
	n := len(b) &^ (directAlign - 1)
	if n > 0 && setDirect(f, true) == nil {
		_, err := f.WriteAt(b[:n], 0)
		if derr := setDirect(f, false); err == nil {
			err = derr
		}
		if errors.Is(err, unix.EINVAL) {
			n = 0 // the file system takes O_DIRECT but not this alignment
		} else if err != nil {
			return err
		}
	} else {
		n = 0
	}
	_, err := f.WriteAt(b[n:], int64(n))
	return err
}

// readBackWhile is what readBack's errors say was being done to the file.
const readBackWhile = "read back"

// readBack reads the archive at path into buf, directly where possible,
// and returns its content. buf must start directAlign-aligned and hold the
// file's size rounded up to directAlign; a file too large for buf (sized
// by the caller from the compression bound) is ErrCorrupt, so that a bad
// leftover archive is replaced like any other. Symbolic links are never
// followed. A leftover archive, opened here first, may be under another
// process's lease: its break is waited for until ctx is done
// (segment.OpenNoFollowContext).
func readBack(ctx context.Context, path string, buf []byte) ([]byte, error) {
	f, err := segment.OpenNoFollowContext(ctx, path)
	if err != nil {
		return nil, segment.FileError(path, readBackWhile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, segment.FileError(path, readBackWhile, err)
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if size+directAlign > int64(len(buf)) {
		// Larger than the compression bound of its segment: whatever
		// made it, it is not that segment's archive.
		return nil, fmt.Errorf("%s: %d bytes, more than an archive of its segment can be: %w", path, size, segment.ErrCorrupt)
	}
	direct := setDirect(f, true) == nil
	var off int64
	for off < size {
		end := size
		if direct {
			end = (size + directAlign - 1) &^ (directAlign - 1)
		}
		n, err := f.ReadAt(buf[off:end], off)
		off += int64(n)
		if direct && errors.Is(err, unix.EINVAL) {
			// Not at this alignment after all: read the rest buffered.
			if err = setDirect(f, false); err == nil {
				direct = false
				continue
			}
		}
		if errors.Is(err, io.EOF) && off < size {
			// Shorter than when it was opened: truncated meanwhile.
			return nil, &segment.ChangedError{Path: path, While: readBackWhile, Off: off, Err: io.ErrUnexpectedEOF}
		}
		if err != nil && off < size {
			return nil, segment.FileError(path, fmt.Sprintf("%s at offset %d", readBackWhile, off), err)
		}
	}
	if off != size {
		// A direct read goes to the next block boundary, past the size
		// the file had when it was opened: it grew meanwhile.
		return nil, fmt.Errorf("%s: changed while it was %s: %d bytes, %d when it was opened", path, readBackWhile, off, size)
	}
	return buf[:size], nil
}
