package reader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
)

// A log of 3k+1 segments with 3, 6, 9... missing when the reader lists it;
// retention removes each segment the reader reads, and every older one,
// as the reader reaches it. Each of the k holes then reaches down to a
// removed segment with no older one still there: removal, reported once
// per hole, every record of the others read. Each hole used to look at
// every older segment listed again (segment.Gone).
func TestRemovedManyHoles(t *testing.T) {
	const k, recs = 10, 20
	dir := t.TempDir()
	sealedLog(t, dir, 3*k+1, recs)
	rm := func(s uint64) {
		if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	for s := uint64(3); s <= 3*k; s += 3 {
		rm(s)
	}
	var dmg []Damage
	r, err := Open(dir, Options{OnDamage: func(d Damage) { dmg = append(dmg, d) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, removedTo := 0, uint64(0)
	for ; r.Next(); n++ {
		for s := r.Record().Position.Seq; removedTo < s; {
			removedTo++
			rm(removedTo) // the reader holds segment s open
		}
	}
	if r.Err() != nil || n != (2*k+1)*recs || len(dmg) != k {
		t.Fatalf("%d records, err %v, damage %v; want %d records and %d holes", n, r.Err(), dmg, (2*k+1)*recs, k)
	}
	for j, d := range dmg {
		if s := uint64(3 * (j + 1)); d.Kind != DamageRemoved || d.Seq != s || d.Len != 1 {
			t.Fatalf("damage %d: %v (%v); want segment %d removed", j, d.Kind, &d, s)
		}
	}
}

// A number found gone, listed again (a log emptied and begun again at 1,
// or a file put back), is present again: what was found gone is of one
// listing only.
func TestOlderPresentNewListing(t *testing.T) {
	dir := t.TempDir()
	sealedLog(t, dir, 3, 1)
	r := &Reader{dir: dir, ctx: context.Background()}
	defer r.Close()
	if err := r.relist(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, segment.FileName(1))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= 3; s++ {
		if err := os.Remove(filepath.Join(dir, segment.FileName(s))); err != nil {
			t.Fatal(err)
		}
	}
	if r.olderPresent(3) {
		t.Fatal("segments 1 and 2 are gone, but one is found present")
	}
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := r.relist(); err != nil {
		t.Fatal(err)
	}
	if !r.olderPresent(3) {
		t.Fatal("segment 1 is there again and listed, but not found present")
	}
}

// BenchmarkRemovedWhileReadOlderPresent asks, for a hole above each of n
// listed segments, all gone, whether an older one stayed. ns/segment
// stays flat as n grows when each segment is looked at once.
func BenchmarkRemovedWhileReadOlderPresent(b *testing.B) {
	for _, n := range []int{64, 256} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := &Reader{dir: b.TempDir(), ctx: context.Background()}
			for i := range n {
				r.list = append(r.list, segment.Entry{Seq: uint64(2*i + 1)})
			}
			for b.Loop() {
				r.older = segment.Gone{}
				for _, e := range r.list {
					if r.olderPresent(e.Seq + 1) {
						b.Fatal("an older segment present in an empty directory")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/segment")
		})
	}
}
