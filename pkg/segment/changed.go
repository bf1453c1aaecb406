package segment

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ChangedError is the error for a file that changed under its reader:
// bytes it had when it was opened are gone, found by a read of its
// mapping that faulted (Guard), by a short read, or by a record whose
// copy no longer matches the CRC it passed (ErrChangedAfterCheck). Every
// reader of segments and archives, and compress-finished, reports it
// alike — the file, what was being done, and the offset that had no
// data — so that a truncated file reads the same wherever it was found. Not
// ErrCorrupt: the file changed, nothing says it was bad.
type ChangedError struct {
	Path  string
	While string // what was being done to it: "read", "being archived"
	// Off is the offset in the file that had no data; for
	// ErrChangedAfterCheck, the offset of the record that changed.
	Off int64
	Err error // the cause: a *MappingFault, io.ErrUnexpectedEOF or ErrChangedAfterCheck
}

// ErrChangedAfterCheck is the cause of a ChangedError for a record whose
// payload, copied out of a mapping (AppendPayload), no longer matches the
// CRC its frame passed when it was decoded: the file was cut inside a
// page since (the rest of that page reads as zeros, without a fault), or
// written to.
var ErrChangedAfterCheck = errors.New("record changed after it was checked")

// Error ends with the offset, without the cause's own message: a
// MappingFault's is the runtime's ("nil pointer dereference"), which
// would mislead.
func (e *ChangedError) Error() string {
	if e.Err == ErrChangedAfterCheck {
		return fmt.Sprintf("%s: changed while it was %s (truncated?): the record at offset %d no longer matches its checksum", e.Path, e.While, e.Off)
	}
	return fmt.Sprintf("%s: changed while it was %s (truncated?): no data at offset %d", e.Path, e.While, e.Off)
}

func (e *ChangedError) Unwrap() error { return e.Err }

// Changed returns err, from Guard on a mapping of the file at path, as a
// *ChangedError at the fault's offset; any other error (nil included)
// unchanged. The writer's stores and flushes report so, at the offset
// they touched.
func Changed(path, while string, err error) error {
	var mf *MappingFault // here: errors.As moves it to the heap, once per call
	if err == nil || !errors.As(err, &mf) {
		return err
	}
	return &ChangedError{Path: path, While: while, Off: mf.Off, Err: mf}
}

// changedRead is ChangedRead for a read ("read").
func changedRead(path string, mapped os.FileInfo, err error) error {
	return ChangedRead(path, "read", mapped, err)
}

// ChangedRead is Changed for a read of the mapping of the file at path
// (from its offset 0), described by mapped when it was mapped (nil: not
// known): the error is at the offset where the file's data stops
// (dataEnd), not where the read faulted.
func ChangedRead(path, while string, mapped os.FileInfo, err error) error {
	err = Changed(path, while, err)
	if ce, ok := err.(*ChangedError); ok {
		ce.Off = dataEnd(path, mapped, ce.Off)
	}
	return err
}

// dataEnd is where the data of the file at path stops, for a read of its
// mapping that faulted at offset off: off, or the file's size now if it
// is less. A read faults from the first page past the file's end on; the
// file may end anywhere in the page before, whose rest reads as zeros.
// With mapped, the file at path must be the one mapped: another renamed
// over it has a size of its own, and off is all that is known then.
func dataEnd(path string, mapped os.FileInfo, off int64) int64 {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Size() >= off || mapped != nil && !os.SameFile(st, mapped) {
		return off
	}
	return st.Size()
}

// ReadAt reads len(b) bytes at off from r, the file at path, where the
// caller knows the file had them when it was opened. A short read is the
// file having shrunk since: a *ChangedError at the first offset that had
// no data, wrapping io.ErrUnexpectedEOF. Any other failure is returned
// naming the file and the offset too (not ErrCorrupt either way).
func ReadAt(r io.ReaderAt, path, while string, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	return shortRead(path, while, off+int64(n), err)
}

// shortRead is the error for a read of the file at path that stopped at
// offset at, with err (nil or io.EOF: the file ends there).
func shortRead(path, while string, at int64, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return &ChangedError{Path: path, While: while, Off: at, Err: io.ErrUnexpectedEOF}
	}
	return readError(path, at, err)
}

// AppendChecked is AppendPayload for a payload in the mapping of the file
// at path, with what it finds as an error: it copies under Guard, and
// returns dst unchanged and a *ChangedError naming the file if the copy
// faulted (at the offset that had no data: the file is shorter than the
// payload's page) or no longer matches crc (at the frame's offset off,
// wrapping ErrChangedAfterCheck). while says what was being done, as in
// ChangedError.
func AppendChecked(dst []byte, path, while string, seed uint32, off, ts int64, crc uint32, payload []byte) ([]byte, error) {
	n, ok := len(dst), true
	err := Guard(payload, func() { dst, ok = AppendPayload(dst, seed, off, ts, crc, payload) })
	if err != nil {
		var mf *MappingFault // here, not above: errors.As moves it to the heap
		if !errors.As(err, &mf) {
			return dst[:n], err
		}
		// The fault's offset is in the payload: the file's is past the
		// frame header.
		return dst[:n], &ChangedError{Path: path, While: while, Off: dataEnd(path, nil, off+FrameHeaderSize+mf.Off), Err: mf}
	}
	if !ok {
		return dst[:n], &ChangedError{Path: path, While: while, Off: off, Err: ErrChangedAfterCheck}
	}
	return dst, nil
}
