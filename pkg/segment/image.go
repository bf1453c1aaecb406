package segment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Image is a read-only view of one whole segment, from a .seg file (mapped)
// or a .seg.zst archive (decompressed). Everything that reads segments —
// the reader, verify, inspect, the writer's recovery — goes through it.
type Image struct {
	Path     string
	Archived bool
	// Data is the segment, exactly Header.Size bytes when the header is
	// valid (a truncated file is padded with zeros, a longer one cut), else
	// the file as it is. Slices of it are valid until Close.
	Data     []byte
	FileSize int64 // the size of the file (or decompressed archive) itself
	// ArchiveSize is, for an archive, the size of the .seg.zst file.
	ArchiveSize int64
	Header      Header
	// HeaderErr is why the header is unusable (nil if it is usable); a
	// usable header may still disagree with the file (see Check).
	HeaderErr error

	info    os.FileInfo // of the mapped file; nil for an archive
	release func() error
	// held: Data maps the file, which keeps its inode allocated (not a
	// copy: read with pread, or padded to the header's size).
	held bool
	// lost is where an archive opened by OpenSalvaged stops decoding
	// (Data is zero from there on); 0 when all of it decoded.
	lost int64
	// byName: Header was made from the file name by ReadByName.
	byName bool
}

// openArchive decompresses an archive into memory that release gives
// back, and says how large the archive file is; set by the archive
// support file.
var openArchive func(ctx context.Context, path string) (data []byte, archiveSize int64, release func() error, err error)

// OpenImage opens a segment file or archive for reading. Symbolic links are
// never followed. The image holds no file descriptor; Close releases its
// memory. A file truncated while it is opened is an error, not a SIGBUS.
// A lease's break is waited for as OpenNoFollow does.
func OpenImage(path string) (*Image, error) {
	return OpenImageContext(context.Background(), path)
}

// OpenEntryContext is OpenImageContext of segment e, as List or Lookup
// returned it: e.NotRegular, with no open, when its name is no regular
// file's (an open of a FIFO could block, of a device act on it).
func OpenEntryContext(ctx context.Context, e Entry) (*Image, error) {
	if e.NotRegular != nil {
		return nil, e.NotRegular
	}
	return OpenImageContext(ctx, e.Path)
}

// OpenImageContext is OpenImage whose wait for a lease's break ends when
// ctx is done (OpenNoFollowContext).
func OpenImageContext(ctx context.Context, path string) (*Image, error) {
	archived := IsArchiveName(filepath.Base(path))
	im := &Image{Path: path, Archived: archived}
	if archived {
		if openArchive == nil {
			return nil, fmt.Errorf("%s: reading archives is not supported by this build", path)
		}
		b, size, release, err := openArchive(ctx, path)
		if err != nil {
			return nil, err
		}
		im.Data, im.FileSize, im.ArchiveSize, im.release = b, int64(len(b)), size, release
		im.decodeHeader()
		return im, nil
	}
	f, err := OpenFileContext(ctx, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.MapImage()
}

// decodeMapped is decodeHeader for an image that maps its file. Its reads
// (the header, and fitToHeader's copy of a short file) are the first of
// the mapping, and the file may have been truncated since OpenFile's
// fstat: touching a page past its new end raises SIGBUS, which would
// kill the process. A fault releases the image and is returned as an
// error naming the file and the offset that had no data.
func (im *Image) decodeMapped() error {
	err := im.Guard(im.decodeHeader)
	if err != nil {
		_ = im.Close()
	}
	return err
}

// Guard runs fn, which reads im.Data, under Guard. A fault in the mapping,
// which is what touching a page of a mapped file that shrank raises, comes
// back as the one error every reader of segments (OpenImage, the reader,
// verify, inspect) reports it with: a *ChangedError naming the file and
// the offset where its data stops now (the fault's, or the file's new end
// inside the page before). It unwraps to the *MappingFault.
//
// It watches Data up to its capacity: a mapped file longer than its
// header says is mapped whole, Data cut to the header's size, and
// FileFooter reads the file's end past Data's length.
func (im *Image) Guard(fn func()) error {
	err := Guard(im.Data[:cap(im.Data)], fn)
	if err == nil {
		return nil
	}
	return changedRead(im.Path, im.info, err)
}

// decodeHeader decodes the header of Data and fits Data to it.
func (im *Image) decodeHeader() {
	im.Header, im.HeaderErr = DecodeHeader(im.Data)
	im.HeaderErr = WithPath(im.HeaderErr, im.Path)
	if im.HeaderErr == nil && im.Header.Size != int64(len(im.Data)) {
		im.fitToHeader()
	}
}

// ReadImage is OpenImage for a segment file read into buf with pread(2)
// rather than mapped, for a reader that checks every byte of many sealed
// segments once (verify): the first touch of each page of a fresh mapping
// costs about a microsecond on the VMs we run on, more than the copy. Data
// aliases buf, which must stay untouched until the image is no longer
// used. If buf is too small, or path is an archive, it is OpenImage. The
// copy is a snapshot: a segment a writer is still filling may read torn
// where the mapping would not (see Reopen), so use it for sealed segments.
func ReadImage(path string, buf []byte) (*Image, error) {
	if IsArchiveName(filepath.Base(path)) {
		return OpenImage(path)
	}
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadImage(buf)
}

// openSegmentFile opens a segment file for reading and checks it is one:
// a regular file (never followed through a symbolic link) no larger than
// any segment.
func openSegmentFile(ctx context.Context, path string) (*os.File, os.FileInfo, error) {
	return openRegularFile(ctx, path, MaxSegmentSize)
}

// openRegularFile is openSegmentFile with the size bound given: an
// archive may be a little larger than the segment it holds.
func openRegularFile(ctx context.Context, path string, maxSize int64) (*os.File, os.FileInfo, error) {
	// A FIFO named like a segment fails below (not a regular file): the
	// open does not block (OpenNoFollow).
	f, err := OpenNoFollowContext(ctx, path)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s: is a symbolic link; segment links are never followed", path)
		}
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, NotRegularFile(path, st.Mode())
	}
	if st.Size() > maxSize {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %d bytes is larger than any segment (%d): %w", path, st.Size(), maxSize, ErrCorrupt)
	}
	return f, st, nil
}

// looksSealed reports whether the file of size bytes ends with a footer's
// magic, read with pread. Only such files are mapped in 2 MiB pages: a
// reader's 2 MiB mapping of a file a writer is preparing or filling can
// leave the writer pages of that size, which its flushes write whole.
// Measured with a SyncAlways writer of 16 KiB records and 4 MiB segments
// and a goroutine mapping the three files after the active one and
// reading a word at each end: 861 KB written an append with 2 MiB
// mappings, 20.6 KB with 4 KiB ones, as without the goroutine.
func looksSealed(f *os.File, size int64) bool {
	if size < FooterSize {
		return false
	}
	var b [len(FooterMagic)]byte
	_, err := f.ReadAt(b[:], size-FooterSize)
	return err == nil && string(b[:]) == FooterMagic
}

// fitToHeader makes Data exactly Header.Size bytes. A longer file is cut (the
// extra bytes are reported by Check). A shorter one is copied into an
// anonymous mapping, which costs memory only for the pages the copy touches
// however large the header claims the segment is.
func (im *Image) fitToHeader() {
	if int64(len(im.Data)) > im.Header.Size {
		im.Data = im.Data[:im.Header.Size]
		return
	}
	buf, err := unix.Mmap(-1, 0, int(im.Header.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return // keep the short view; Check reports the size mismatch
	}
	copied := false
	defer func() {
		if !copied {
			// The copy faulted (the mapped file shrank; see
			// decodeMapped): buf is nobody's to release.
			_ = unix.Munmap(buf)
		}
	}()
	copy(buf, im.Data)
	copied = true
	old := im.release
	_ = old()
	im.Data, im.release, im.held = buf, func() error { return unix.Munmap(buf) }, false
}

// ReadByName makes an image whose header is unusable readable frame by
// frame: Header gets the sequence number from the file name and the size
// from the file, nothing else. Every frame's CRC is mixed with the
// sequence, so under a wrong name (or a file copied from another segment)
// no frame validates, and a damaged header costs the reader only itself,
// not the records behind it (FORMAT.md section 3). HeaderErr stays set:
// whatever judges the header (Check, RecoveryRefusal, the reader's
// restart marks) still sees it unusable. It returns false, changing
// nothing, when the header is usable or the name or size is not a
// segment's.
func (im *Image) ReadByName() bool {
	if im.HeaderErr == nil {
		return false
	}
	seq, _, named := ParseName(filepath.Base(im.Path))
	size := int64(len(im.Data))
	if !named || ValidSize(size) != nil {
		return false
	}
	im.Header, im.byName = Header{Seq: seq, Size: size}, true
	return true
}

// Check reports every way the header disagrees with the file: a bad header,
// a size that does not match the file, a sequence that does not match the
// file name. nil means the image is a well-formed segment container.
func (im *Image) Check() error {
	if im.HeaderErr != nil {
		return im.HeaderErr
	}
	return CheckHeader(im.Path, im.Header, im.FileSize)
}

// CheckHeader reports how the valid header h disagrees with the segment
// file at path, fileSize bytes long: another size, or another sequence
// number than the file name's. Recovery refuses such a header, as it does
// a bad one, and does not count the segment as sealed whatever its footer
// says (FORMAT.md section 8, step 3.1): verify, recovery and Image.Check
// all decide it here.
func CheckHeader(path string, h Header, fileSize int64) error {
	if err := sizeMismatch(path, fileSize, h.Size); err != nil {
		return err
	}
	return nameMismatch(path, h.Seq)
}

func sizeMismatch(path string, fileSize, headerSize int64) error {
	if fileSize == headerSize {
		return nil
	}
	return &CorruptError{Path: path, Offset: min(fileSize, headerSize),
		Reason: fmt.Sprintf("file is %d bytes, header says %d", fileSize, headerSize)}
}

// nameMismatch: seq is the header's (or the footer's, which decodes only
// when equal to it).
func nameMismatch(path string, seq uint64) error {
	if n, _, ok := ParseName(filepath.Base(path)); ok && n != seq {
		return &CorruptError{Path: path, Offset: 16,
			Reason: fmt.Sprintf("header sequence %d does not match the file name", seq)}
	}
	return nil
}

// Footer decodes the footer; ErrNoFooter means the segment is not sealed.
// After ReadByName it is decoded against the header made from the name.
func (im *Image) Footer() (Footer, error) {
	if im.HeaderErr != nil && !im.byName {
		return Footer{}, im.HeaderErr
	}
	h := im.Header
	f, err := DecodeFooter(im.Data, h)
	if im.Archived && errors.Is(err, ErrSealUnfinished) {
		// An archive's content was written whole (decodeWholeFooter).
		f, err = decodeWholeFooter(im.Data[h.Size-FooterSize:], h)
	}
	return f, WithPath(err, im.Path)
}

// FileFooter decodes the footer the file ends with, when its valid
// header claims another size (Footer looks where the header puts the
// end): a sealed segment whose header's size was damaged since keeps its
// footer there, which verify chains past it by (FORMAT.md section 6).
// Offsets in errors are the file's.
func (im *Image) FileFooter() (Footer, error) {
	// Data is fitted to the header's size (fitToHeader): a header that
	// claims more than the file holds gets a zero-padded copy, whose first
	// FileSize bytes are the file's; one that claims less gets the
	// mapping cut short, the file's end lying under Data's capacity.
	if im.HeaderErr != nil || im.Archived || im.FileSize == im.Header.Size || int64(cap(im.Data)) < im.FileSize {
		return Footer{}, ErrNoFooter
	}
	h := Header{Seq: im.Header.Seq, Size: im.FileSize}
	f, err := DecodeFooter(im.Data[:im.FileSize:im.FileSize], h)
	return f, WithPath(err, im.Path)
}

// Walk walks the image's record area; see the package function Walk.
func (im *Image) Walk(from int64, mode WalkMode, fn func(Event) bool) int64 {
	if im.HeaderErr != nil && !im.byName {
		return from
	}
	return WalkValid(im.Data, im.Header.Seq, from, mode, im.Valid(), fn)
}

// WalkBatch walks the image's record area into evs; see the package
// function WalkBatch.
func (im *Image) WalkBatch(from int64, mode WalkMode, evs []Event) ([]Event, int64) {
	if im.HeaderErr != nil && !im.byName {
		return evs, from
	}
	return WalkBatch(im.Data, im.Header.Seq, from, mode, im.Valid(), evs)
}

// Valid is how many bytes of Data came from the file: past it, Data is
// padding (a truncated file, or the part of a damaged archive that does
// not decode; see Lost) that must not be read — see WalkValid.
func (im *Image) Valid() int64 {
	v := min(im.FileSize, int64(len(im.Data)))
	if im.lost > 0 {
		v = min(v, im.lost)
	}
	return v
}

// Lost is, for an archive opened by OpenSalvaged, the segment offset from
// which its content did not decode; 0 when all of it did (and for every
// image from OpenImage or ReadImage). The damage from there on is the
// ArchiveDamage's to report: a reader that has reported it stops at the
// first frame that reaches Lost.
func (im *Image) Lost() int64 { return im.lost }

// Reopen opens the file the image maps, for a reader that would rather
// copy its bytes with read(2) than touch the mapping (see pkg/reader's
// bulk replay). It fails for an archive, and when the path no longer names
// the file that was mapped (renamed over, removed): what it returns reads
// the very bytes Data shows.
func (im *Image) Reopen() (*os.File, error) {
	if im.info == nil {
		return nil, fmt.Errorf("%s: not a mapped segment file", im.Path)
	}
	f, st, err := openSegmentFile(context.Background(), im.Path)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(st, im.info) {
		f.Close()
		return nil, fmt.Errorf("%s: no longer the file that was mapped", im.Path)
	}
	return f, nil
}

// Close releases the image's memory. Slices of Data must not be used after.
func (im *Image) Close() error {
	if im.release == nil {
		return nil
	}
	err := im.release()
	im.release, im.Data = nil, nil
	return err
}

// Maps reports whether fi is the file the image maps (an archive's image
// maps none). While the image maps the file its inode stays allocated, so
// its number cannot name another file: fi with the same device and inode
// is that file, under whatever name. An image that holds a copy (a file
// shorter than its header says, padded in memory; ReadImage's) keeps no
// inode: one removed since may have given its number to a file made at
// the same name, such as a writer's segment made again, which has the
// header's size where the copied file had less, so the sizes must agree
// too.
func (im *Image) Maps(fi os.FileInfo) bool {
	return im.info != nil && fi != nil && os.SameFile(im.info, fi) && (im.held || fi.Size() == im.FileSize)
}

// Shrunk returns a *ChangedError at the new end of the file the image
// maps if that file is now shorter than when it was mapped, else nil (an
// archive's or a copy's image, a file removed or renamed over). A file
// cut inside a page reads as zeros from the cut to the page's end,
// without a fault: a reader through the mapping that found damage there
// asks this after its pass, and reports the change instead.
func (im *Image) Shrunk() error {
	if !im.held {
		return nil
	}
	end := dataEnd(im.Path, im.info, im.FileSize)
	if end >= im.FileSize {
		return nil
	}
	return &ChangedError{Path: im.Path, While: "read", Off: end, Err: io.ErrUnexpectedEOF}
}

// ReleaseBlock is the unit Image.Release gives back: 2 MiB, aligned in
// the mapping (and in the file). It is also the most one fault maps of a
// file whose page cache holds it in 2 MiB folios, by one huge-page entry,
// or whole on kernels that map a large folio at once: a reader that
// touches two blocks holds both, however few bytes it reads of each.
const ReleaseBlock = hugeAlign

// Release drops this process's page-table entries for the blocks of Data
// (ReleaseBlock) wholly inside [lo, hi) (MADV_DONTNEED), so that a segment
// read through its mapping does not stay resident in the reader's address
// space: the file's pages stay in the page cache, and reading them again
// maps them again. Whole blocks, because splitting a huge-page entry
// costs more than it saves; a range reaching the end of Data releases its
// last block too, whole or not (no huge-page entry maps a block the
// mapping ends inside). A range reaching outside Data is cut to it. It
// returns where the released blocks end (lo when none was), and does
// nothing for an image that does not map its file (a copy, whose memory
// would be zeroed).
func (im *Image) Release(lo, hi int64) int64 {
	hi = min(hi, int64(len(im.Data)))
	if !im.held || lo >= hi {
		return lo
	}
	from, to := (max(lo, 0)+hugeAlign-1)&^(hugeAlign-1), hi&^(hugeAlign-1)
	if hi == int64(len(im.Data)) {
		to = hi
	}
	if from >= to {
		return lo
	}
	_ = unix.Madvise(im.Data[from:to], unix.MADV_DONTNEED) // an optimisation only
	return to
}
