package reader_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/reader"
)

// TestLastIsTheLastAtOpen: without Follow, Last(n) returns the last n
// records committed when Open located them, not those plus every record
// committed while the reader got to them. `auditseg tail -n 5` of a live
// log printed dozens of records, as many as the writer committed while
// tail started up, and `tail -n 1 -o json` several objects. Records
// committed after Open go to the segment being read, to a new segment
// after a rotation, and through Bulk when that segment is sealed by the
// time the reader comes to it.
func TestLastIsTheLastAtOpen(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		for _, tc := range []struct {
			name               string
			before, n, rotated int // records in segment 1 before, records asked, rotations at Open
		}{
			{"live segment", 20, 5, 0},
			{"from a sealed segment", 30, 25, 1},
			{"all of them", 10, 100, 1},
			{"none", 10, 0, 0},
		} {
			t.Run(fmt.Sprintf("%s/bulk=%v", tc.name, bulk), func(t *testing.T) {
				dir := t.TempDir()
				l := newLiveLog(t, dir, segSize)
				defer l.close()
				var all []rec
				for i := range tc.before {
					if i == tc.before-tc.before/3 && tc.rotated > 0 {
						l.rotate() // the last third in segment 2, live
					}
					all = append(all, l.append(payload(i)))
				}
				var lines []string
				opts := reader.Options{Start: reader.Last(uint64(tc.n))}
				if bulk {
					opts.Bulk = &reader.Bulk{Append: lineOf, Write: func(p []byte, _ reader.Position) error {
						lines = append(lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
						return nil
					}}
				}
				r, err := reader.Open(dir, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				// Committed after Open: more in the live segment, which is
				// then sealed (so that Bulk may take it), and a new one.
				for i := range 5 {
					l.append(payload(1000 + i))
				}
				l.rotate()
				l.append(payload(2000))
				for r.Next() {
					x := r.Record()
					lines = append(lines, line(x.Position, x.Time.UnixNano(), checkedCopy(t, x)))
				}
				if err := r.Err(); err != nil {
					t.Fatal(err)
				}
				want := all[len(all)-min(tc.n, len(all)):]
				if len(lines) != len(want) {
					t.Fatalf("Last(%d) returned %d records, want the %d committed at Open:\n%q", tc.n, len(lines), len(want), lines)
				}
				for i, w := range want {
					if !slices.Contains(lines, line(w.pos, w.ts, w.payload)) {
						t.Fatalf("record %d (%v) missing from %q", i, w.pos, lines)
					}
				}
			})
		}
	}
}

// line is lineOf without its newline.
func line(pos reader.Position, ts int64, payload []byte) string {
	return strings.TrimSuffix(string(lineOf(nil, pos, ts, payload)), "\n")
}

// TestLastReportsDamageAfterTheLastRecord: the end Last notes is for a
// live writer's log only. In a dead writer's log nothing is committed
// after Open, and what lies after the last record (here a reservation the
// writer left) is still reported, as the damage of the records asked for.
func TestLastReportsDamageAfterTheLastRecord(t *testing.T) {
	dir := t.TempDir()
	l := newLiveLog(t, dir, segSize)
	defer l.close()
	for i := range 5 {
		l.append(payload(i))
	}
	l.reserve(10)
	l.die()
	got, dmg := readAll(t, dir, reader.Options{Start: reader.Last(2)})
	if len(got) != 2 || len(dmg) != 1 || dmg[0].Kind != reader.DamageReserved {
		t.Fatalf("Last(2) of a dead writer's log: %d records, damage %v; want 2 records and the reservation", len(got), dmg)
	}
}
