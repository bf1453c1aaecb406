package writer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditseg/auditseg/internal/crashtest"
	"github.com/auditseg/auditseg/internal/testfs"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// TestOpenContextDone: a context already done opens nothing: no
// directory made, no recovery begun (the leftover temporary file, which
// recovery removes first, is still there), the context's error.
func TestOpenContextDone(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	missing := filepath.Join(t.TempDir(), "log")
	if w, err := writer.OpenContext(cancelled, missing, writer.Options{SegmentSize: 64 << 10}); w != nil || !errors.Is(err, context.Canceled) {
		if w != nil {
			w.Close()
		}
		t.Fatalf("OpenContext with a cancelled context: writer %v, error %v; want none and context.Canceled", w != nil, err)
	}
	if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory a cancelled OpenContext was given: %v; want it not made", err)
	}

	dir := t.TempDir()
	acked := crashedLog(t, dir)
	before := dirFiles(t, dir)
	expired, stop := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer stop()
	if w, err := writer.OpenContext(expired, dir, writer.Options{SegmentSize: 64 << 10}); w != nil || !errors.Is(err, context.DeadlineExceeded) {
		if w != nil {
			w.Close()
		}
		t.Fatalf("OpenContext past its deadline: writer %v, error %v; want none and context.DeadlineExceeded", w != nil, err)
	}
	sameFiles(t, dir, before, "")
	checkAcked(t, dir, acked)
}

// TestOpenCancelledInLockLeaseWait: Open opens LOCK for writing, and
// under another process's lease on it (a file server's) that open waits
// for the lease's break, up to lease-break-time and a second (46 s by
// default), with no context to end the wait. OpenContext returns once its
// context is cancelled, the lease still held, with the context's error;
// it holds no lock and has changed nothing.
func TestOpenCancelledInLockLeaseWait(t *testing.T) {
	dir := t.TempDir()
	acked := crashedLog(t, dir) // LOCK copied with the rest
	before := dirFiles(t, dir)
	err := testfs.CancelInLeaseWait(t, filepath.Join(dir, segment.LockName), openIn(dir, nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenContext cancelled in LOCK's lease wait: %v; want context.Canceled", err)
	}
	t.Log(err)
	notHeld(t, dir)
	sameFiles(t, dir, before, "")
	checkAcked(t, dir, acked)
}

// TestOpenCancelledInSegmentLeaseWait: recovery reads the footers of the
// newest segments (a write lease on the newest makes that read wait for
// the lease's break), then opens each unsealed one for writing (a read
// lease, which reads do not break, makes that open wait: a blocking open,
// which nothing but the kernel's break of the lease ended). Cancelled in
// either wait, OpenContext returns with the context's error, the lease
// still held; no lock is held, and the segments are as they were (the
// leftover temporary file is gone: recovery's first step).
func TestOpenCancelledInSegmentLeaseWait(t *testing.T) {
	for _, c := range []struct {
		name   string
		cancel func(testing.TB, string, func(context.Context) error) error
		which  func(unsealed []string) string
	}{
		{"footer read of the newest", testfs.CancelInLeaseWait, func(u []string) string { return u[len(u)-1] }},
		{"open for writing of the oldest unsealed", testfs.CancelInReadLeaseWait, func(u []string) string { return u[0] }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			acked := crashedLog(t, dir)
			before := dirFiles(t, dir)
			leased := c.which(unsealedSegments(t, dir))
			err := c.cancel(t, leased, openIn(dir, nil))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("OpenContext cancelled in %s's lease wait: %v; want context.Canceled", leased, err)
			}
			t.Log(err)
			notHeld(t, dir)
			// LOCK names the process that last took it.
			sameFiles(t, dir, before, segment.TempExt, segment.LockName)
			checkAcked(t, dir, acked)
		})
	}
}

// TestOpenCancelledBetweenRecoveries: each segment recovery seals is
// flushed (an msync and two fsyncs, which a slow disk can make take
// seconds), as is the segment Open creates when recovery leaves none to
// continue in. A context cancelled while one is sealed stops Open before
// the next step, not after them all: the segment being sealed is sealed,
// the one after it (here a prepared one, the newest, which Open would
// continue in) left as it was, or none created; the next Open goes on.
func TestOpenCancelledBetweenRecoveries(t *testing.T) {
	for _, prepared := range []bool{true, false} {
		t.Run(fmt.Sprintf("prepared %v", prepared), func(t *testing.T) {
			dir := t.TempDir()
			acked := crashedLog(t, dir)
			unsealed := trimUnused(t, dir)
			if prepared {
				l, err := segment.List(dir)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, segment.FileName(l.NextSeq()))
				if err := os.WriteFile(p, segment.NewImage(l.NextSeq(), 64<<10, 1), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			before := dirFiles(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fs := &crashtest.FaultFS{After: func(c crashtest.Call) {
				if c.Op == crashtest.OpFsync {
					cancel()
				}
			}}
			if err := openIn(dir, fs)(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("OpenContext cancelled while recovery sealed %s: %v; want context.Canceled", unsealed[0], err)
			} else {
				t.Log(err)
			}
			if _, err := segment.SealedFooter(unsealed[0]); err != nil {
				t.Errorf("%s, being sealed when the context was cancelled: %v; want it sealed", unsealed[0], err)
			}
			// The sealed one changed, the temporary file removed, no
			// segment made.
			sameFiles(t, dir, before, segment.TempExt, segment.LockName, filepath.Base(unsealed[0]))
			notHeld(t, dir)
			checkAcked(t, dir, acked)
		})
	}
}

// openIn returns a run for testfs.CancelInLeaseWait that opens the log in
// dir (through fs, if not nil) and fails if that succeeds.
func openIn(dir string, fs writer.FS) func(context.Context) error {
	return func(ctx context.Context) error {
		w, err := writer.OpenContext(ctx, dir, writer.Options{SegmentSize: 64 << 10, FS: fs})
		if err == nil {
			w.Close()
			return errors.New("OpenContext succeeded")
		}
		return err
	}
}

// trimUnused removes the newest segments of dir that are unsealed and
// hold no record, as if the writer had been killed before it prepared
// them, and returns the unsealed ones left, oldest first.
func trimUnused(t *testing.T, dir string) []string {
	t.Helper()
	u := unsealedSegments(t, dir)
	for len(u) > 1 {
		p := u[len(u)-1]
		if used, err := segment.HasRecordBytes(p); err != nil || used {
			break
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		u = u[:len(u)-1]
	}
	return u
}

// unsealedSegments lists the segment files of dir that have no footer,
// oldest first.
func unsealedSegments(t *testing.T, dir string) []string {
	t.Helper()
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var u []string
	for _, e := range l.Segments {
		if _, err := segment.SealedFooter(e.Path); errors.Is(err, segment.ErrNoFooter) {
			u = append(u, e.Path)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if len(u) == 0 {
		t.Fatalf("no unsealed segment in %s", dir)
	}
	return u
}

// notHeld fails the test if a writer holds dir.
func notHeld(t *testing.T, dir string) {
	t.Helper()
	if wi, err := segment.WriterInfo(dir); err != nil || wi.Alive {
		t.Errorf("after a cancelled OpenContext: writer alive %v (%v); want the log not held", wi.Alive, err)
	}
}

// dirFiles returns the content of each file in dir by name.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[de.Name()] = string(b)
	}
	return m
}

// sameFiles fails the test unless dir holds the files before lists, as
// they were, and no other: but for those whose names end in gone (if not
// ""), which must be gone, and those named in changed, which may differ.
func sameFiles(t *testing.T, dir string, before map[string]string, gone string, changed ...string) {
	t.Helper()
	now := dirFiles(t, dir)
	for name, b := range before {
		switch n, ok := now[name]; {
		case gone != "" && strings.HasSuffix(name, gone):
			if ok {
				t.Errorf("%s is still there; recovery's first step removes it", name)
			}
		case !ok:
			t.Errorf("%s is gone", name)
		case n != b && !slices.Contains(changed, name):
			t.Errorf("%s was changed", name)
		}
	}
	for name := range now {
		if _, ok := before[name]; !ok {
			t.Errorf("%s was made", name)
		}
	}
}
