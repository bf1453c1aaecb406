package segment

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// File names in a log directory. Sequence numbers are zero-padded to 20
// digits so that lexical order is sequence order.
const (
	SegmentExt = ".seg"     // a segment file
	ArchiveExt = ".seg.zst" // a zstd archive of a sealed segment
	TempExt    = ".tmp"     // suffix of files being created (never read)
	LockName   = "LOCK"     // the writer's lock file
)

// FileName returns the base name of segment seq.
func FileName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, SegmentExt) }

// ArchiveName returns the base name of the archive of segment seq.
func ArchiveName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, ArchiveExt) }

// ArchiveOf returns the path of the archive of the segment file at path
// (same directory, ArchiveName of its sequence), or "" when path is not a
// segment file's: where to look for a segment compress-finished replaced
// after a directory listing named it.
func ArchiveOf(path string) string {
	seq, archived, ok := ParseName(filepath.Base(path))
	if !ok || archived {
		return ""
	}
	return filepath.Join(filepath.Dir(path), ArchiveName(seq))
}

// ArchivedInstead returns the archive of the segment file at path when err
// (from opening or reading that file) says it is gone and its archive is
// there: compress-finished replaced it after the directory listing that
// named it, and removes an original only once its archive is durable, so
// the segment is still part of the log. Every reader of a listing (the
// reader, verify, the writer's recovery, tail's cursor check) follows it.
func ArchivedInstead(path string, err error) (string, bool) {
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	a := ArchiveOf(path)
	if a == "" {
		return "", false
	}
	if _, serr := os.Lstat(a); serr != nil {
		return "", false
	}
	return a, true
}

// IsArchiveName reports whether a file name is an archive's: it ends in
// ArchiveExt. An archive copied or renamed out of its log keeps that
// suffix, not necessarily the 20-digit stem ParseName requires.
func IsArchiveName(name string) bool { return strings.HasSuffix(name, ArchiveExt) }

// ParseName parses a segment or archive base name. ok is false for any
// other name, including temporary files and number 0: sequence numbers
// start at 1, and a log continued after a foreign segment 0 would chain
// segment 1 to it, which verify takes for the first of its log.
func ParseName(name string) (seq uint64, archived bool, ok bool) {
	stem, found := strings.CutSuffix(name, ArchiveExt)
	if found {
		archived = true
	} else if stem, found = strings.CutSuffix(name, SegmentExt); !found {
		return 0, false, false
	}
	if len(stem) != 20 {
		return 0, false, false
	}
	for _, c := range stem {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	seq, err := strconv.ParseUint(stem, 10, 64)
	return seq, archived, err == nil && seq != 0
}

// Entry is one segment present in a directory.
type Entry struct {
	Seq  uint64
	Path string // the file to read: the original if present, else the archive
	// Archived is true when Path is a .seg.zst archive.
	Archived bool
	// Duplicate is the archive's path when both the original and its archive
	// exist (an interrupted compress-finished run). Path is the original.
	Duplicate string
	// NotRegular, when not nil, says why the segment cannot be read:
	// something other than a regular file takes its name (a directory, a
	// FIFO, a symbolic link, a socket, a device: NotRegularFile), and
	// neither of its names is a regular file. It is still a segment of the
	// log, one that cannot be read: left out, such a file was a hole in
	// the middle of the log and nothing at all at its end, where its
	// records were lost without a report and a writer made its number
	// again. Readers report it as a segment that cannot be read without
	// opening it (a FIFO's open could block), and a writer numbers past it.
	NotRegular error
}

// Listing is what a log directory holds.
type Listing struct {
	Dir      string
	Segments []Entry // in sequence order
	// Temps are leftovers of interrupted creations (*.tmp): never records.
	Temps []string
	// Unexpected are names that do not belong to a log directory, and a
	// segment's name something other than a regular file takes when the
	// segment's other name is a regular file (Entry.NotRegular otherwise).
	Unexpected []string
}

// Last returns the newest segment, or false if there is none.
func (l *Listing) Last() (Entry, bool) {
	if len(l.Segments) == 0 {
		return Entry{}, false
	}
	return l.Segments[len(l.Segments)-1], true
}

// NextSeq is the sequence number a writer must use for a new segment:
// one past the newest present, archives included, so numbers are never
// reused.
func (l *Listing) NextSeq() uint64 {
	if e, ok := l.Last(); ok {
		return e.Seq + 1
	}
	return 1
}

// CleanName is how auditseg reads the name of a log directory, or of a
// segment file in one: lexically cleaned (filepath.Clean), "" left as
// it is (an error, not the working directory). Segment paths are joined
// to the directory's name, which cleans it, while the kernel resolves a
// name as given: for "link/../log", link a symbolic link, filepath.Join
// names log beside link and open(2) the log beside link's target. With
// both present, a reader that listed one and opened the other's
// segments would mix two logs. So every entry point (writer.Open,
// reader.Open, verify, inspect, compress-finished, tail) takes the name
// through this first, as List and WriterInfo do, and all it lists,
// locks and opens is one directory: the one the writer appends to.
func CleanName(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Clean(name)
}

// List reads a log directory, named as CleanName reads it (Listing.Dir
// is that name). It is the only directory scan in auditseg.
//
// A directory read is not a snapshot: a name renamed into the directory
// while it runs may be missed although a later one is returned (POSIX
// leaves it unspecified). A writer creating segments, or compress-finished
// renaming a segment to its archive and removing the original, could then
// show a sequence number missing between present ones (a reader would
// pass it, verify would report a gap), or the oldest segment missing (a
// replay from the start would silently begin after it). So List looks up
// the names of the first few missing numbers, and of the one before the
// oldest listed, directly and reads the directory again if one of them is
// there.
func List(dir string) (Listing, error) {
	dir = CleanName(dir)
	var l Listing
	var err error
	for range 4 {
		if l, err = list(dir); err != nil || !l.missed() {
			break
		}
	}
	return l, err
}

// missed reports whether the number before the oldest listed segment, or
// one missing between two listed ones, exists now (checking at most 8 of
// the latter).
func (l *Listing) missed() bool {
	if len(l.Segments) > 0 && l.Segments[0].Seq > 1 && l.present(l.Segments[0].Seq-1) {
		return true
	}
	checked := 0
	for i := 1; i < len(l.Segments) && checked < 8; i++ {
		for seq := l.Segments[i-1].Seq + 1; seq < l.Segments[i].Seq && checked < 8; seq++ {
			checked++
			if l.present(seq) {
				return true
			}
		}
	}
	return false
}

// present reports whether segment seq's file or archive exists now.
func (l *Listing) present(seq uint64) bool { return Present(l.Dir, seq) }

// Present reports whether segment seq of the log in dir exists now, as its
// file or its archive, of any kind: what List keeps (Entry.NotRegular).
// Readers and verify ask it to tell a segment removed (retention) from one
// still there.
func Present(dir string, seq uint64) bool {
	_, ok := Lookup(dir, seq)
	return ok
}

// Lookup returns segment seq of the log in dir as List would hold it (its
// file if there, else its archive; Duplicate is not looked for), found by
// its names, without reading the directory: a follower looks up the
// segments after the newest it listed this way at each rotation, as
// reading a directory of thousands of names there made its CPU grow with
// the number of segments kept. false when neither name is taken.
func Lookup(dir string, seq uint64) (Entry, bool) {
	var odd Entry
	for _, name := range [2]string{FileName(seq), ArchiveName(seq)} {
		p := filepath.Join(dir, name)
		st, err := os.Lstat(p)
		switch {
		case err != nil:
		case st.Mode().IsRegular():
			return Entry{Seq: seq, Path: p, Archived: IsArchiveName(name)}, true
		case odd.Path == "":
			odd = notRegularEntry(seq, p, st.Mode())
		}
	}
	return odd, odd.Path != ""
}

// notRegularEntry is segment seq as List holds it when the name at path,
// of mode, is the one it has and no regular file.
func notRegularEntry(seq uint64, path string, mode fs.FileMode) Entry {
	return Entry{Seq: seq, Path: path, Archived: IsArchiveName(path), NotRegular: NotRegularFile(path, mode)}
}

// list reads dir once. The directory is read in its own order
// (File.ReadDir; os.ReadDir sorted every name first), and only what is
// kept is sorted: the segments by number, the other names by name.
func list(dir string) (Listing, error) {
	des, err := readDir(dir)
	if err != nil {
		return Listing{}, fmt.Errorf("list log directory: %w", err)
	}
	l := Listing{Dir: dir}
	bySeq := make(map[uint64]int, len(des))
	var odd []Entry // segment names other kinds of file take
	for _, de := range des {
		name := de.Name()
		seq, archived, ok := ParseName(name)
		switch {
		case ok && !de.Type().IsRegular():
			// The type from the directory entry (lstat where the file
			// system gives none): a FIFO is never opened here.
			odd = append(odd, notRegularEntry(seq, joinName(dir, name), de.Type()))
		case ok:
			p := joinName(dir, name)
			if i, dup := bySeq[seq]; dup {
				e := &l.Segments[i]
				if archived {
					e.Duplicate = p
				} else {
					e.Duplicate, e.Path, e.Archived = e.Path, p, false
				}
				continue
			}
			bySeq[seq] = len(l.Segments)
			l.Segments = append(l.Segments, Entry{Seq: seq, Path: p, Archived: archived})
		case name == LockName && de.Type().IsRegular():
		case strings.HasSuffix(name, TempExt) && de.Type().IsRegular():
			if _, _, ok := ParseName(strings.TrimSuffix(name, TempExt)); ok {
				l.Temps = append(l.Temps, joinName(dir, name))
				continue
			}
			l.Unexpected = append(l.Unexpected, joinName(dir, name))
		default:
			l.Unexpected = append(l.Unexpected, joinName(dir, name))
		}
	}
	// A number with no regular file is a segment that cannot be read,
	// named by its .seg name if both are taken; the other names are
	// unexpected.
	slices.SortFunc(odd, func(a, b Entry) int { return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Path, b.Path)) })
	for _, e := range odd {
		if _, taken := bySeq[e.Seq]; taken {
			l.Unexpected = append(l.Unexpected, e.Path)
			continue
		}
		bySeq[e.Seq] = len(l.Segments)
		l.Segments = append(l.Segments, e)
	}
	slices.SortFunc(l.Segments, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	slices.Sort(l.Temps) // one directory's paths: in name order
	slices.Sort(l.Unexpected)
	return l, nil
}

// readDir is os.ReadDir without its sort.
func readDir(dir string) ([]os.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// joinName is filepath.Join(dir, name) for dir cleaned (CleanName) and
// name read from it, a single element other than "." and "..", without
// Join's second cleaning.
func joinName(dir, name string) string {
	switch dir {
	case ".":
		return name
	case "/":
		return dir + name
	}
	return dir + "/" + name
}

// SyncDir fsyncs the directory dir, which makes its entries (creations,
// renames, removals) durable: the operating system's call behind the
// writer's and compress-finished's file-system interfaces.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
