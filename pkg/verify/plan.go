package verify

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// plan lists directories and groups file arguments by directory, each
// path read as segment.CleanName reads it: as given, a segment file
// named through a symbolic link and ".." would be another log's than its
// directory (filepath.Dir cleans).
//
// A directory is known by its identity, not its name, so that a log and
// a segment named in other words (a link to the directory, a relative
// and an absolute name) are checked once, in one log. A file argument
// that a directory argument's listing holds, before or after it, is
// checked in that directory's log: checked in a log of its own, it was
// missing from the directory's, a gap there.
func plan(paths []string, o *Options) ([]*unit, []job, error) {
	type arg struct {
		path string
		dir  bool
	}
	args := make([]arg, len(paths))
	for i, p := range paths {
		p = segment.CleanName(p)
		st, err := os.Stat(p) // a directory argument may be a link; segment files never are followed
		if err != nil {
			if lst, lerr := os.Lstat(p); lerr == nil && lst.Mode()&os.ModeSymlink != 0 {
				st, err = lst, nil
			} else {
				return nil, nil, fmt.Errorf("verify: %w", err)
			}
		}
		args[i] = arg{path: p, dir: st.IsDir()}
	}
	// Directories first, so that a file argument before its directory is
	// known to be that log's.
	whole := map[string]*unit{}
	for _, a := range args {
		if !a.dir {
			continue
		}
		id := dirID(a.path)
		if whole[id] != nil {
			continue
		}
		l, err := segment.List(a.path)
		if err != nil {
			return nil, nil, fmt.Errorf("verify %s: %w", a.path, err)
		}
		u := &unit{dir: a.path, whole: true, listing: l, listed: true}
		u.lock = stampLock(a.path)
		u.askWriter(o)
		whole[id] = u
	}
	var units []*unit
	var jobs []job
	fileUnits := map[string]*unit{}
	listed := map[string]map[string]bool{} // the names in whole[id]'s listing, once a file argument asks
	seen := map[string]bool{}
	var fileIDs map[string]plannedName // of the files planned, once a file argument asks
	addJob := func(u *unit, id, p string, notRegular error) {
		if key := id + "/" + filepath.Base(p); !seen[key] {
			seen[key] = true
			var size int64
			if st, err := os.Lstat(p); err == nil {
				size = st.Size()
			}
			u.jobs = append(u.jobs, len(jobs))
			jobs = append(jobs, job{path: p, size: size, notRegular: notRegular})
		}
	}
	for _, a := range args {
		if a.dir {
			id := dirID(a.path)
			if u := whole[id]; u != nil && !u.planned {
				u.planned = true
				for _, e := range u.listing.Segments {
					addJob(u, id, e.Path, e.NotRegular)
				}
				units = append(units, u)
			}
			continue
		}
		dir := filepath.Dir(a.path)
		id := dirID(dir)
		if u := whole[id]; u != nil {
			if listed[id] == nil {
				listed[id] = u.names()
			}
			if listed[id][filepath.Base(a.path)] {
				continue
			}
		}
		// A hard link to a segment, elsewhere or under a name that is
		// no segment's, is that segment named in other words: checked
		// once, where it was first planned. A name that claims another
		// sequence number is another claim about the file, which its
		// check judges (the header's number against the name's), so it
		// is checked; and only file arguments are merged so: two names
		// of one file inside a listing are a damaged log, each reported.
		if fid, ok := fileID(a.path); ok {
			if fileIDs == nil {
				fileIDs = listedIDs(whole)
			}
			seq, _, named := segment.ParseName(filepath.Base(a.path))
			p, dup := fileIDs[fid]
			if dup && (!named || p.named && p.seq == seq) {
				continue
			}
			if !dup {
				fileIDs[fid] = plannedName{seq: seq, named: named}
			}
		}
		u := fileUnits[id]
		if u == nil {
			u = &unit{dir: dir}
			if l, err := segment.List(dir); err == nil {
				u.listing, u.listed = l, true
			}
			u.lock = stampLock(dir)
			u.askWriter(o)
			fileUnits[id] = u
			units = append(units, u)
		}
		addJob(u, id, a.path, nil)
	}
	return units, jobs, nil
}

// dirID names the directory dir by its device and inode, or by its name
// when it cannot be looked at (the open of its files then fails).
func dirID(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "name " + dir
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// fileID names the file at path (not followed) by its device and inode.
func fileID(path string) (string, bool) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", false
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), true
}

// plannedName is the name a file was first planned under: the sequence
// number it claims, if it is a segment's name.
type plannedName struct {
	seq   uint64
	named bool
}

// listedIDs returns the identities of the regular files the listings of
// the whole logs hold, with the sequence number each is listed as.
func listedIDs(whole map[string]*unit) map[string]plannedName {
	ids := map[string]plannedName{}
	for _, u := range whole {
		for _, e := range u.listing.Segments {
			if id, ok := fileID(e.Path); ok {
				ids[id] = plannedName{seq: e.Seq, named: true}
			}
		}
	}
	return ids
}

// names returns the names of the segments and archives u's listing holds.
func (u *unit) names() map[string]bool {
	m := make(map[string]bool, len(u.listing.Segments))
	for _, e := range u.listing.Segments {
		m[filepath.Base(e.Path)] = true
	}
	return m
}
