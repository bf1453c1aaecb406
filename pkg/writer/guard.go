package writer

import (
	"runtime/debug"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Stores into the mapping made on the caller's goroutine off the
// per-record path — the END frame (a crossing claim's, Close's) and
// Abort's PAD frame — are guarded like the background goroutines'
// accesses (segment.Guard): a segment file truncated by someone else
// under a running writer (FORMAT.md section 12, assumption 8) faults
// where its pages are gone, and that must fail the writer, naming the
// file and the offset, not kill the process with SIGBUS.
//
// Append's, Reserve's and Commit's stores are not: the same guard there
// (the goroutine's panic-on-fault set and restored, and a deferred
// recover, on every call; open-coded, nothing allocated) cost 5-6 ns a
// 64-byte record in BenchmarkAppendInSegment (~30 ns, alternating runs),
// and a variant that restores the setting inline and recovers only if
// the stores did not finish cost as much. Nor are a Reservation's Bytes,
// which the caller writes outside any call of ours.

// unguard closes a guard over stores into s that began by setting the
// goroutine's panic-on-fault, which was old before: it restores the
// setting, and turns a fault inside s's mapping into the writer's sticky
// failure, which it returns in *err. Any other panic goes on. It must be
// the deferred call itself, for its recover to stop the panic:
//
//	defer w.unguard(s, &err, debug.SetPanicOnFault(true))
func (w *Writer) unguard(s *seg, err *error, old bool) {
	debug.SetPanicOnFault(old)
	if p := recover(); p != nil {
		*err = w.storeFault(s, p)
	}
}

// storeFault fails the writer for p, a fault met by a store into s
// (recovered by unguard), and returns the sticky failure: that is what
// the call returns now and every call after it. The frame that faulted
// stays claimed where its commit word is still in the file, and the next
// Open pads it.
func (w *Writer) storeFault(s *seg, p any) error {
	if s == nil {
		panic(p) // no mapping was touched
	}
	w.fail(segment.Changed(s.path, appending, segment.Fault(s.data, p)))
	return *w.failed.Load()
}

// appending is what a segment file truncated under a store of the
// appending side was "changed while it was" doing (segment.ChangedError).
const appending = "being appended to"

// putEnd writes the END frame at off in s, guarded: once a segment, by
// the claim that crosses its data limit, or by Close.
func (w *Writer) putEnd(s *seg, off int64) (err error) {
	defer w.unguard(s, &err, debug.SetPanicOnFault(true))
	segment.PutEnd(s.data, s.seq, off, w.clock.now())
	return nil
}
