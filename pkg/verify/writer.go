package verify

import (
	"path/filepath"
	"time"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// The log's writer, as verify sees it: whether one holds the log, where
// it appends from, and the second look at segments it may have been
// changing while they were read.

// lockStamp identifies a version of the LOCK file: every writer that
// takes the lock rewrites it (its pid), which changes its ctime (on this
// kernel a fine-grained one once it has been read with stat).
type lockStamp struct {
	ino, size int64
	ctime     unix.Timespec
}

func stampLock(dir string) lockStamp {
	var st unix.Stat_t
	if unix.Lstat(filepath.Join(dir, segment.LockName), &st) != nil {
		return lockStamp{}
	}
	return lockStamp{ino: int64(st.Ino), size: st.Size, ctime: st.Ctim}
}

func writerAlive(dir string, o *Options) (bool, int) {
	w := writerInfo(dir, o)
	return w.Alive, w.PID
}

func writerInfo(dir string, o *Options) segment.Writer {
	w, err := segment.WriterInfoContext(o.ctx, dir)
	if err != nil && o.ctx.Err() == nil { // stopped: PathsContext says so
		o.Logger.Warn("cannot tell whether a writer holds the log; assuming none", "dir", dir, "err", err)
	}
	return w
}

// askWriter notes the log's writer, before any segment is read: only a
// from line read then says the segments below it were final when read
// (one read later may come from a writer that recovered, and so sealed,
// a segment after verify had read it unsealed).
func (u *unit) askWriter(o *Options) {
	w := writerInfo(u.dir, o)
	u.alive, u.pid, u.from = w.Alive, w.PID, w.From
}

// recheckLive looks again at a live writer's segments that looked wrong:
// the writer may have been storing that very frame or footer, or sealed a
// segment between the check of an older one (still unsealed then) and its
// own. The suspects are chosen again after every round: a segment read
// while its footer was being stored looks damaged, not sealed, so the
// unsealed one before it is a suspect only once the recheck has found
// the footer whole.
func recheckLive(u *unit, o *Options) {
	for try := 0; try < liveRechecks; try++ {
		suspects := liveSuspects(u.results, u.from)
		if len(suspects) == 0 {
			return
		}
		t := time.NewTimer(liveRecheck)
		select {
		case <-t.C:
		case <-o.ctx.Done():
			t.Stop()
			return // PathsContext returns no report
		}
		for _, i := range suspects {
			if o.ctx.Err() != nil {
				return
			}
			if r := checkPath(u.results[i].rep.Path, o, nil); !r.vanished {
				u.results[i] = r
			}
		}
	}
}

// recheckStale reads again every segment that was not sealed and clean,
// once a writer is known to have come and gone while they were read: it
// may have recovered, appended to and sealed them since.
func recheckStale(u *unit, o *Options) {
	for i, r := range u.results {
		if r.sealed && r.found.total() == 0 {
			continue
		}
		if o.ctx.Err() != nil {
			return // PathsContext returns no report
		}
		if nr := checkPath(r.rep.Path, o, nil); !nr.vanished {
			u.results[i] = nr
		}
	}
}

// liveSuspects returns the segments of a live log whose findings may be
// work in progress: those with findings in the newest run of segments
// that are not sealed and clean, and any unsealed one older than a sealed
// one; none below from, the first segment the writer appends to, where
// nothing is in progress.
func liveSuspects(results []*result, from uint64) []int {
	var suspects []int
	tail := true // still in the newest run of segments that are not sealed and clean
	sealedAfter := false
	for i := len(results) - 1; i >= 0; i-- {
		r := results[i]
		if r.order < from {
			break
		}
		clean := r.sealed && r.found.total() == 0
		tail = tail && !clean
		if tail && r.found.total() > 0 || r.footerAbsent && sealedAfter {
			suspects = append(suspects, i)
		}
		sealedAfter = sealedAfter || r.countsSealed()
	}
	return suspects
}
