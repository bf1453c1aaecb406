package verify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// appendChildEnv makes the test binary a writer that opens (recovers) the
// directory it names, appends a record, leaves a reservation open, says
// "ready" and waits to be killed in its first segment.
const appendChildEnv = "AUDITSEG_VERIFY_APPEND_CHILD"

func appendChild(dir string) {
	w, err := writer.Open(dir, writer.Options{SegmentSize: testSize, Sync: writer.SyncNone})
	if err == nil {
		_, err = w.Append([]byte("appended after recovery"))
	}
	if err == nil {
		_, err = w.Reserve(40)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}

// refusedCases damage segment 2 (records 0 to 3, no END) as recovery
// refuses to seal it (FORMAT.md section 8, steps 3.2 and 3.4), and return
// the findings verify must make in it, as key renders them: the same as
// below a live writer's first segment (TestUnsealedBelowLiveWritersFirstSegment).
var refusedCases = []struct {
	name   string
	damage func(s *seg) []string
}{
	{"torn frame and a reservation", func(s *seg) []string {
		s.img[s.offs[1]+segment.FrameHeaderSize] ^= 0xff // its CRC fails
		segment.StoreLength(s.img, s.offs[3], -segment.LoadLength(s.img, s.offs[3]))
		return []string{
			fmt.Sprintf("torn 2:%d", s.offs[1]),
			fmt.Sprintf("unfinished 2:%d", s.offs[3]),
			fmt.Sprintf("missing-end 2:%d", s.end),
		}
	}},
	{"END claim with bytes behind it", func(s *seg) []string {
		limit := segment.RecordLimit(testSize)
		segment.StoreLength(s.img, s.end, -int32(limit-s.end))
		s.img[s.end+segment.FrameHeaderSize+8] = 'x'
		return []string{
			fmt.Sprintf("unfinished 2:%d", s.end),
			fmt.Sprintf("missing-end 2:%d", limit),
		}
	}},
}

// refusedLog is a log of a sealed segment 1 and a segment 2 damaged by
// damage (a refusedCases entry's), and the findings it returned.
func refusedLog(t *testing.T, damage func(s *seg) []string) (*testLog, *seg, []string) {
	l := newTestLog(t)
	l.sealed(3)
	s := build(2, payloads(2, 4), false)
	want := damage(s)
	l.add(s)
	return l, s, want
}

// A dead writer's unsealed segment that recovery will not seal, its
// newest: a torn frame, or an END claim with bytes behind its header.
// verify called the second crash residue only (exit 3, "writer.Open
// finishes and seals it"), and the first's reservation and missing END
// residue too; writer.Open leaves both unsealed, as every later one will.
// They are judged as below a sealed segment: missing-end, reservations
// fatal unfinished, the same findings before and after the recovery that
// leaves them.
func TestDeadWritersTailRecoveryRefuses(t *testing.T) {
	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			l, s, want := refusedLog(t, tc.damage)
			wantRefused(t, l.dir, want)
			for range 2 { // the second recovery leaves it too
				w, err := writer.Open(l.dir, writer.Options{SegmentSize: testSize, Sync: writer.SyncNone})
				if err != nil {
					t.Fatal(err)
				}
				if st := w.Recovered(); st.DamagedSegments != 1 || st.RecoveredSegments != 0 {
					t.Errorf("recovery %+v; want segment 2 left as it is", st)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				leftAsIs(t, s)
				wantRefused(t, l.dir, want)
			}
		})
	}
}

// The same segments below the first segment of a writer that recovered
// the log, appended and was killed (its LOCK says "from 3", no writer
// holds it): verify judged segment 2 as the dead writer's crash residue,
// with segment 3, which recovery does seal. Only segment 3 is residue.
func TestBelowDeadWritersFirstSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, tc := range refusedCases {
		t.Run(tc.name, func(t *testing.T) {
			l, s, want := refusedLog(t, tc.damage)
			kill(t, startChild(t, appendChildEnv, l.dir))
			b, err := os.ReadFile(filepath.Join(l.dir, segment.LockName))
			if err != nil || !bytes.HasSuffix(b, []byte("\nfrom 3\n")) {
				t.Fatalf("LOCK %q, %v; want the killed writer appending from segment 3", b, err)
			}
			leftAsIs(t, s)
			rep := wantRefused(t, l.dir, want)
			if st := rep.Segments[2].Status; st != Warn {
				t.Errorf("segment 3 %s; want WARN, crash residue\n%s", st, summary(rep))
			}
			w, err := writer.Open(l.dir, writer.Options{SegmentSize: testSize, Sync: writer.SyncNone})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if st := w.Recovered(); st.DamagedSegments != 1 {
				t.Errorf("recovery %+v; want segment 2 left as it is", st)
			}
			if _, err := segment.SealedFooter(filepath.Join(l.dir, segment.FileName(3))); err != nil {
				t.Errorf("segment 3 not sealed by recovery: %v", err)
			}
			leftAsIs(t, s)
		})
	}
}

// wantRefused verifies dir, full and quick, with no writer alive, and
// wants segment 2's findings to be want, fatal, its state unsealed, and
// those of the segments after it residue only (a killed writer may leave
// a creation's temporary: unexpected, which does not count).
func wantRefused(t *testing.T, dir string, want []string) *Report {
	t.Helper()
	var rep *Report
	for _, quick := range []bool{false, true} {
		rep = mustDir(t, dir, Options{Quick: quick})
		var got []string
		for _, f := range rep.Findings {
			if f.Seq != 2 {
				if !f.Residue && f.Class != Unexpected {
					t.Errorf("quick=%v: %s %q", quick, key(f), f.Reason)
				}
				continue
			}
			got = append(got, key(f))
			if f.Residue || !f.Fatal() {
				t.Errorf("quick=%v: %s is not fatal, or is residue (%s)", quick, key(f), f.Reason)
			}
		}
		if rep.Logs[0].WriterAlive || !slices.Equal(got, want) || rep.ExitCode(false) != ExitFindings {
			t.Errorf("quick=%v: writer alive %v, exit %d, findings\n%swant exit %d, %q", quick, rep.Logs[0].WriterAlive, rep.ExitCode(false), summary(rep), ExitFindings, want)
		}
		if st := rep.Segments[1].State; st != StateUnsealed {
			t.Errorf("quick=%v: segment 2 %s; want unsealed", quick, st)
		}
	}
	return rep
}

// leftAsIs wants segment s unsealed, its bytes as built.
func leftAsIs(t *testing.T, s *seg) {
	t.Helper()
	if _, err := segment.SealedFooter(s.path); !errors.Is(err, segment.ErrNoFooter) {
		t.Errorf("segment 2: %v; want it unsealed", err)
	}
	if b, err := os.ReadFile(s.path); err != nil || !bytes.Equal(b, s.img) {
		t.Errorf("segment 2 changed (%v)", err)
	}
}
