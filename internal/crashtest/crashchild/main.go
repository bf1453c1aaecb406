// Command crashchild is the writer process the crash tests kill. It opens a
// log with pkg/writer, appends numbered records (crashtest.RecordID) from
// several goroutines, and reports every acknowledged record to its parent on
// stdout, one crashtest.Msg per write. It runs until it is killed, or with
// -records until every goroutine has appended that many, then closes.
//
// The environment variable AUDITSEG_CRASH_KILL selects an injected kill
// point (crashtest.KillPoint), where the child kills itself with SIGKILL.
// The points are observed through writer.Options.FS, so the writer carries
// no test hook.
//
// It is built and run by the tests in internal/crashtest only.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

var (
	dir          = flag.String("dir", "", "log directory")
	run          = flag.Uint("run", 1, "run number stamped in every record")
	goroutines   = flag.Int("goroutines", 8, "appending goroutines")
	segmentSize  = flag.Int64("segment-size", 64<<10, "segment size (the seal kill point assumes every msync ending in a footer is one)")
	syncMode     = flag.String("sync", "none", "none, interval or always")
	syncInterval = flag.Duration("sync-interval", 5*time.Millisecond, "flush period for -sync interval")
	records      = flag.Int("records", 0, "records per goroutine; 0 appends until killed")
	seed         = flag.Uint64("seed", 1, "random seed")
	pace         = flag.Duration("pace", 0, "sleep this long after every 16 records of a goroutine (a slower writer)")
)

var outMu sync.Mutex

// send writes one message in one write(2): a message is never split even
// if the process dies while writing.
func send(m crashtest.Msg) {
	b := m.Encode()
	outMu.Lock()
	defer outMu.Unlock()
	if _, err := os.Stdout.Write(b[:]); err != nil {
		fmt.Fprintln(os.Stderr, "crashchild: report:", err)
		os.Exit(4)
	}
}

func die() {
	send(crashtest.Msg{Kind: crashtest.MsgKill})
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "crashchild: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	flag.Parse()
	mode, err := writer.ParseSyncMode(*syncMode)
	if err != nil || *dir == "" {
		fatal("bad flags: %v", err)
	}
	var kp *crashtest.KillPoint
	if s := os.Getenv(crashtest.KillEnv); s != "" {
		k, err := crashtest.ParseKillPoint(s)
		if err != nil {
			fatal("%v", err)
		}
		kp = &k
	}
	var opening atomic.Bool
	opening.Store(true)
	var hits atomic.Int64
	fs := &crashtest.FaultFS{}
	if kp != nil && !kp.Rotate {
		hook := func(c crashtest.Call) {
			if opening.Load() != kp.Open {
				return
			}
			if kp.Seal {
				if !sealing(c, *segmentSize) {
					return
				}
			} else if c.Op != kp.Op {
				return
			}
			if hits.Add(1) == int64(kp.N) {
				die()
			}
		}
		if kp.After {
			fs.After = hook
		} else {
			fs.Before = hook
		}
	}
	w, err := writer.Open(*dir, writer.Options{
		SegmentSize: *segmentSize, Sync: mode, SyncInterval: *syncInterval, FS: fs,
	})
	opening.Store(false)
	if err != nil {
		fatal("%v", err)
	}
	send(crashtest.Msg{Kind: crashtest.MsgReady})

	var maxSeq, rotations atomic.Uint64
	seen := func(p segment.Position) {
		for {
			m := maxSeq.Load()
			if p.Seq <= m {
				return
			}
			if maxSeq.CompareAndSwap(m, p.Seq) {
				if m != 0 && kp != nil && kp.Rotate && rotations.Add(1) == uint64(kp.N) {
					die()
				}
				return
			}
		}
	}
	var wg sync.WaitGroup
	for g := range *goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(*seed, uint64(g)))
			reserve := g == *goroutines-1 // one goroutine uses Reserve/Commit/Abort
			var buf []byte
			for i := 0; *records == 0 || i < *records; i++ {
				id := crashtest.RecordID{Run: uint32(*run), G: uint32(g), I: uint64(i)}
				var pos segment.Position
				if reserve {
					pos = reserveOne(w, rng, id)
				} else {
					buf = crashtest.AppendRecord(buf[:0], id)
					if pos, err = w.Append(buf); err != nil {
						fatal("append %v: %v", id, err)
					}
				}
				seen(pos)
				send(crashtest.Msg{Kind: crashtest.MsgAck, G: id.G, I: id.I, Pos: pos})
				if *pace > 0 && i%16 == 15 {
					time.Sleep(*pace)
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		fatal("close: %v", err)
	}
	send(crashtest.Msg{Kind: crashtest.MsgDone})
}

// reserveOne commits record id through Reserve, sometimes after aborting a
// reservation (which must never be read back) and sometimes yielding
// between filling and committing, to widen the window in which a kill
// leaves a reserved frame.
func reserveOne(w *writer.Writer, rng *rand.Rand, id crashtest.RecordID) segment.Position {
	if rng.IntN(32) == 0 {
		r, err := w.Reserve(crashtest.RecordLen(id))
		if err != nil {
			fatal("reserve: %v", err)
		}
		crashtest.PutRecord(r.Bytes(), crashtest.RecordID{Run: ^uint32(0), G: id.G, I: id.I})
		if err := r.Abort(); err != nil {
			fatal("abort: %v", err)
		}
	}
	r, err := w.Reserve(crashtest.RecordLen(id))
	if err != nil {
		fatal("reserve %v: %v", id, err)
	}
	crashtest.PutRecord(r.Bytes(), id)
	if rng.IntN(16) == 0 {
		runtime.Gosched()
	}
	if err := r.Commit(); err != nil {
		fatal("commit %v: %v", id, err)
	}
	return r.Position()
}

// sealing reports whether a call flushes a written footer: the sealer and
// recovery both fsync a segment once more after writing its footer with
// pwrite (the records were fsynced before).
func sealing(c crashtest.Call, size int64) bool {
	hasFooter := func(b []byte) bool {
		n := len(b)
		return n >= segment.FooterSize &&
			string(b[n-segment.FooterSize:n-segment.FooterSize+len(segment.FooterMagic)]) == segment.FooterMagic
	}
	switch c.Op {
	case crashtest.OpFsync:
		// The running writer fsyncs through the handle it created under
		// the temporary name; recovery opens segments by their own name.
		final := strings.TrimSuffix(c.Path, segment.TempExt)
		if final != c.Path {
			if _, err := os.Lstat(c.Path); err == nil {
				return false // still the temporary file: the header's fsync
			}
		}
		f, err := os.Open(final)
		if err != nil {
			return false
		}
		defer f.Close()
		b := make([]byte, segment.FooterSize)
		_, err = f.ReadAt(b, size-segment.FooterSize)
		return err == nil && hasFooter(b)
	}
	return false
}
