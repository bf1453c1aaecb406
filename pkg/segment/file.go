package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A File is a segment file open for reading, for a reader that reads it
// more than one way, its footer and then all of it, and must read the
// same file each time: between two opens of its name, a segment renamed
// over it (recovery, an operator's copy) would give the second read
// another file's bytes. verify opens each segment file so, once.
type File struct {
	f    *os.File
	info os.FileInfo // at open
}

// OpenFile opens the segment file at path as OpenImage does: never
// through a symbolic link, and only a regular file no larger than any
// segment. An archive is not a segment file (OpenImage decompresses it).
func OpenFile(path string) (*File, error) {
	return OpenFileContext(context.Background(), path)
}

// OpenFileContext is OpenFile whose wait for a lease's break ends when
// ctx is done (OpenNoFollowContext).
func OpenFileContext(ctx context.Context, path string) (*File, error) {
	if IsArchiveName(filepath.Base(path)) {
		return nil, fmt.Errorf("%s: an archive, not a segment file (read it with OpenImage)", path)
	}
	f, st, err := openSegmentFile(ctx, path)
	if err != nil {
		return nil, err
	}
	return &File{f: f, info: st}, nil
}

// Path is the path the file was opened by.
func (f *File) Path() string { return f.f.Name() }

// Size is the file's size when it was opened.
func (f *File) Size() int64 { return f.info.Size() }

// ReadAt reads the file with pread(2).
func (f *File) ReadAt(b []byte, off int64) (int, error) { return f.f.ReadAt(b, off) }

// Close closes the file; images made of it stay valid.
func (f *File) Close() error { return f.f.Close() }

// Footer is ReadFooter of the file: its header and footer, read with
// pread.
func (f *File) Footer() (Footer, error) {
	_, ft, err := f.HeaderFooter()
	return ft, err
}

// HeaderFooter is Footer, returning the header it decoded the footer
// against as well (valid, and of the file's size, when err is nil).
func (f *File) HeaderFooter() (Header, Footer, error) {
	path := f.Path()
	h, err := readFileHeader(f.f, path)
	if err != nil {
		return Header{}, Footer{}, err
	}
	if err := sizeMismatch(path, f.Size(), h.Size); err != nil {
		return Header{}, Footer{}, err
	}
	var fb [FooterSize]byte
	if err := ReadAt(f.f, path, "read", fb[:], h.Size-FooterSize); err != nil {
		return Header{}, Footer{}, err
	}
	ft, err := decodeFooterAt(fb[:], h)
	return h, ft, WithPath(err, path)
}

// EndAt reports whether the frame slot at off of the file, whose header
// is h, holds a committed END frame, as DecodeFrame of its image would,
// reading only the slot's frame header with pread: an END frame's CRC
// covers nothing else. verify --quick asks it of a sealed segment's END
// offset, so as to map nothing. A file that ends before the slot does is
// an error (a *ChangedError: it was cut since it was opened).
func (f *File) EndAt(h Header, off int64) (bool, error) {
	b := make([]byte, FrameHeaderSize) // aligned, for LoadLength
	if off >= HeaderSize && off <= RecordLimit(h.Size)-FrameHeaderSize {
		if err := ReadAt(f.f, f.Path(), "read", b, off); err != nil {
			return false, err
		}
	} // else the decoder finds the slot out of the record area
	var fr Frame
	decodeFrameIn(&fr, b, off, h.Size, FrameSeed(h.Seq), off)
	return fr.State == Committed && fr.Type == TypeEnd, nil
}

// MapImage is OpenImage of the file: the image maps it, and outlives
// the descriptor.
func (f *File) MapImage() (*Image, error) {
	im := &Image{Path: f.Path()}
	if err := im.mapOpen(f); err != nil {
		return nil, err
	}
	if err := im.decodeMapped(); err != nil {
		return nil, err
	}
	return im, nil
}

// ReadImage is ReadImage of the file: into buf if it fits, else MapImage.
func (f *File) ReadImage(buf []byte) (*Image, error) {
	if f.Size() > int64(len(buf)) {
		return f.MapImage()
	}
	path := f.Path()
	im := &Image{Path: path, FileSize: f.Size(), info: f.info, release: func() error { return nil }}
	n, err := f.f.ReadAt(buf[:im.FileSize], 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) < im.FileSize) {
		return nil, readError(path, int64(n), err)
	}
	// A file that shrank since the stat reads as the shorter file.
	im.FileSize = int64(n)
	im.Data = buf[:n]
	im.decodeHeader()
	return im, nil
}

// mapOpen maps f, the file of im.
func (im *Image) mapOpen(f *File) error {
	im.FileSize, im.info = f.Size(), f.info
	if im.FileSize == 0 {
		im.Data, im.release = []byte{}, func() error { return nil }
		return nil
	}
	m, err := MapFile(f.f, im.FileSize, false, looksSealed(f.f, im.FileSize))
	if err != nil {
		return err
	}
	im.Data, im.release, im.held = m, func() error { return Unmap(m) }, true
	return nil
}
