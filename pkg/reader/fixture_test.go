package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/edsrzf/mmap-go"
	"github.com/klauspost/compress/zstd"
)

const (
	segSize = segment.MinSegmentSize
	baseTS  = int64(1_700_000_000_000_000_000)
)

// rec is what a fixture wrote, to compare with what the reader returns.
type rec struct {
	pos     segment.Position
	ts      int64
	payload []byte
}

// segBuilder fills one segment image in memory with the segment package's
// builders.
type segBuilder struct {
	img []byte
	seq uint64
	off int64
}

func newSeg(seq uint64) *segBuilder { return newSegSize(seq, segSize) }

func newSegSize(seq uint64, size int64) *segBuilder {
	return &segBuilder{img: segment.NewImage(seq, size, baseTS), seq: seq, off: segment.HeaderSize}
}

func (b *segBuilder) fits(n int) bool {
	return b.off+segment.FrameSize(n) <= segment.DataLimit(int64(len(b.img)))
}

func (b *segBuilder) add(ts int64, p []byte) rec {
	r := rec{pos: segment.Position{Seq: b.seq, Offset: b.off}, ts: ts, payload: p}
	b.off = segment.PutFrame(b.img, b.seq, b.off, segment.TypeData, ts, p)
	return r
}

// reserve leaves a frame for n payload bytes reserved, never committed.
func (b *segBuilder) reserve(n int) int64 {
	at := b.off
	segment.StoreLength(b.img, at, -int32(segment.FrameHeaderSize+n))
	b.off += segment.FrameSize(n)
	return at
}

func (b *segBuilder) seal(t testing.TB, prev [segment.DigestSize]byte) [segment.DigestSize]byte {
	t.Helper()
	segment.PutEnd(b.img, b.seq, b.off, baseTS)
	f, err := segment.Seal(b.img, prev, 0, baseTS)
	if err != nil {
		t.Fatal(err)
	}
	return f.Digest
}

func (b *segBuilder) write(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, segment.FileName(b.seq))
	if err := os.WriteFile(p, b.img, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func payload(i int) []byte { return fmt.Appendf(nil, "user=u%d action=login n=%d", i%7, i) }

// writeLog writes n records into sealed segments numbered from 1 (the
// last one left unsealed unless sealLast), record i stamped baseTS+i
// seconds, and returns them in order.
func writeLog(t testing.TB, dir string, n int, sealLast bool) []rec {
	t.Helper()
	return writeLogWith(t, dir, n, sealLast, payload)
}

func writeLogWith(t testing.TB, dir string, n int, sealLast bool, payload func(int) []byte) []rec {
	t.Helper()
	return writeLogSize(t, dir, segSize, n, sealLast, payload)
}

// writeLogSize is writeLogWith for segments of size bytes.
func writeLogSize(t testing.TB, dir string, size int64, n int, sealLast bool, payload func(int) []byte) []rec {
	t.Helper()
	var out []rec
	var prev [segment.DigestSize]byte
	b := newSegSize(1, size)
	for i := range n {
		p := payload(i)
		if !b.fits(len(p)) {
			prev = b.seal(t, prev)
			b.write(t, dir)
			b = newSegSize(b.seq+1, size)
		}
		out = append(out, b.add(baseTS+int64(i)*int64(time.Second), p))
	}
	if sealLast {
		b.seal(t, prev)
	}
	b.write(t, dir)
	return out
}

// readAll reads with opts until the end and returns the records (cloned)
// and damage reports.
func readAll(t testing.TB, dir string, opts reader.Options) ([]rec, []reader.Damage) {
	t.Helper()
	var dmg []reader.Damage
	opts.OnDamage = func(d reader.Damage) { dmg = append(dmg, d) }
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []rec
	for r.Next() {
		x := r.Record()
		out = append(out, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
	}
	if err := r.Err(); err != nil {
		t.Fatalf("reader error: %v", err)
	}
	if err := r.Wait(context.Background()); !opts.Follow && err != io.EOF {
		t.Fatalf("Wait without Follow = %v, want io.EOF", err)
	}
	return out, dmg
}

// checkedCopy copies x's payload as a caller must, with AppendPayload
// and Clone, and reports an error unless both succeed with Payload's
// bytes: the records these helpers read are intact, and a check that
// failed on one would make tail refuse a good record. Callable from a
// follower's goroutine (Errorf, not Fatalf).
func checkedCopy(t testing.TB, x reader.Record) []byte {
	p, err := x.AppendPayload(nil)
	c, cerr := x.Clone()
	if err != nil || cerr != nil || !bytes.Equal(p, x.Payload) || !bytes.Equal(c.Payload, x.Payload) || c.Position != x.Position || !c.Time.Equal(x.Time) {
		t.Errorf("record at %v: AppendPayload %.40q, %v; Clone %.40q, %v; want %.40q", x.Position, p, err, c.Payload, cerr, x.Payload)
	}
	return p
}

func sameRecs(t testing.TB, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].pos != want[i].pos || got[i].ts != want[i].ts || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("record %d: got %v %d %q, want %v %d %q", i, got[i].pos, got[i].ts, got[i].payload,
				want[i].pos, want[i].ts, want[i].payload)
		}
	}
}

// liveLog is an in-process stand-in for a writer in another process: it
// holds the directory's lock and stores frames through a shared mapping of
// each segment file, as the real writer does, rotating, sealing and
// optionally archiving segments behind itself.
type liveLog struct {
	t       testing.TB
	dir     string
	lock    *segment.Lock
	size    int64
	seq     uint64
	m       mmap.MMap
	off     int64
	prev    [segment.DigestSize]byte
	archive bool // replace each sealed segment by a .seg.zst
	mu      sync.Mutex
}

func newLiveLog(t testing.TB, dir string, size int64) *liveLog {
	t.Helper()
	lk, err := segment.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := &liveLog{t: t, dir: dir, lock: lk, size: size}
	l.open(1)
	return l
}

func (l *liveLog) open(seq uint64) {
	p := filepath.Join(l.dir, segment.FileName(seq))
	if err := os.WriteFile(p+".tmp", segment.NewImage(seq, l.size, time.Now().UnixNano()), 0o640); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		l.t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	m, err := mmap.Map(f, mmap.RDWR, 0)
	if err != nil {
		l.t.Fatal(err)
	}
	l.seq, l.m, l.off = seq, m, segment.HeaderSize
}

// rotate ends, seals (and archives) the current segment and opens the next.
func (l *liveLog) rotate() {
	segment.PutEnd(l.m, l.seq, l.off, time.Now().UnixNano())
	f, err := segment.Seal(l.m, l.prev, 0, time.Now().UnixNano())
	if err != nil {
		l.t.Fatal(err)
	}
	l.prev = f.Digest
	old := l.seq
	data := bytes.Clone(l.m)
	if err := l.m.Unmap(); err != nil {
		l.t.Fatal(err)
	}
	l.open(old + 1)
	if l.archive {
		archiveSegment(l.t, l.dir, old, data)
	}
}

// archiveSegment replaces segment seq by its .seg.zst archive, the way
// compress-finished does (temp, rename, then remove the original).
func archiveSegment(t testing.TB, dir string, seq uint64, data []byte) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(data, nil)
	enc.Close()
	a := filepath.Join(dir, segment.ArchiveName(seq))
	if err := os.WriteFile(a+".tmp", z, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(a+".tmp", a); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, segment.FileName(seq))); err != nil {
		t.Fatal(err)
	}
}

// append commits one record and returns it.
func (l *liveLog) append(p []byte) rec {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.off+segment.FrameSize(len(p)) > segment.DataLimit(l.size) {
		l.rotate()
	}
	ts := time.Now().UnixNano()
	r := rec{pos: segment.Position{Seq: l.seq, Offset: l.off}, ts: ts, payload: p}
	l.off = segment.PutFrame(l.m, l.seq, l.off, segment.TypeData, ts, p)
	return r
}

// reserve claims a frame and leaves it reserved.
func (l *liveLog) reserve(n int) segment.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := l.off
	segment.StoreLength(l.m, at, -int32(segment.FrameHeaderSize+n))
	l.off += segment.FrameSize(n)
	return segment.Position{Seq: l.seq, Offset: at}
}

// commitReserved commits a frame reserved earlier with payload p.
func (l *liveLog) commitReserved(at segment.Position, p []byte, ts int64) rec {
	l.mu.Lock()
	defer l.mu.Unlock()
	segment.PutFrame(l.m, l.seq, at.Offset, segment.TypeData, ts, p)
	return rec{pos: at, ts: ts, payload: p}
}

// die releases the lock without finishing anything, as kill -9 would.
func (l *liveLog) die() {
	if err := l.lock.Release(); err != nil {
		l.t.Fatal(err)
	}
}

func (l *liveLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m != nil {
		_ = l.m.Unmap()
		l.m = nil
	}
	_ = l.lock.Release()
}

// follower runs a following reader in a goroutine and collects records.
type follower struct {
	mu     sync.Mutex
	recs   []rec
	dmg    []reader.Damage
	cancel context.CancelFunc
	done   chan error
}

func follow(t testing.TB, dir string, opts reader.Options) *follower {
	t.Helper()
	fw := &follower{done: make(chan error, 1)}
	opts.Follow = true
	opts.OnDamage = func(d reader.Damage) {
		fw.mu.Lock()
		fw.dmg = append(fw.dmg, d)
		fw.mu.Unlock()
	}
	r, err := reader.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fw.cancel = cancel
	go func() {
		defer r.Close()
		for x, err := range r.All(ctx) {
			if err != nil {
				fw.done <- err
				return
			}
			fw.mu.Lock()
			fw.recs = append(fw.recs, rec{pos: x.Position, ts: x.Time.UnixNano(), payload: checkedCopy(t, x)})
			fw.mu.Unlock()
		}
		fw.done <- nil
	}()
	t.Cleanup(func() { fw.stop(t) })
	return fw
}

// waitFor waits until the follower has n records.
func (fw *follower) waitFor(t testing.TB, n int, timeout time.Duration) []rec {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		fw.mu.Lock()
		got := len(fw.recs)
		out := append([]rec(nil), fw.recs...)
		fw.mu.Unlock()
		if got >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower has %d records after %v, want %d", got, timeout, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (fw *follower) damage() []reader.Damage {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return append([]reader.Damage(nil), fw.dmg...)
}

func (fw *follower) stop(t testing.TB) {
	if fw.cancel == nil {
		return
	}
	fw.cancel()
	fw.cancel = nil
	select {
	case err := <-fw.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("follower: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("follower did not stop within 5s of cancel")
	}
}
