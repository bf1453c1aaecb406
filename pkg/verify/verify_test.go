package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"golang.org/x/sys/unix"
)

// want is one expected finding: "class seq:offset", plus " residue" for
// crash residue.
type want = string

func key(f Finding) string {
	s := fmt.Sprintf("%s %d:%d", f.Class, f.Seq, f.Offset)
	if f.Residue {
		s += " residue"
	}
	return s
}

// TestFindingClasses builds a three-segment log, damages it one way per
// case (as raft-wal's corrupt funcs do) and checks the exact findings and
// the exit code.
func TestFindingClasses(t *testing.T) {
	fa := footerAt()
	cases := []struct {
		name    string
		corrupt func(t *testing.T, l *testLog, s []*seg)
		opts    Options
		want    []want
		exit    int
		strict  int // exit code with strict; 0 means same as exit
	}{
		{name: "clean", corrupt: func(*testing.T, *testLog, []*seg) {}, exit: 0},
		{
			name: "torn payload",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[1].img[s[1].offs[2]+segment.FrameHeaderSize+3] ^= 0x10
				s[1].write(t)
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[2])},
			exit: 1,
		},
		{
			name: "torn frame header",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[0].img[s[0].offs[0]+9] ^= 1 // flags
				s[0].write(t)
			},
			want: []want{"torn 1:64"},
			exit: 1,
		},
		{
			// A footer is written once every frame is committed: a claim
			// in a sealed segment is damage (it was reported as a dead
			// writer's leftover, and its claimed extent trusted).
			name: "reserved frame in a sealed segment",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				off := s[1].offs[1]
				segment.StoreLength(s[1].img, off, -segment.LoadLength(s[1].img, off))
				s[1].write(t)
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[1])},
			exit: 1,
		},
		{
			name: "zeroed record in a sealed segment",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				clear(s[1].img[s[1].offs[1]:s[1].offs[2]])
				s[1].write(t)
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[1])},
			exit: 1,
		},
		{
			name: "sealed without END",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				clear(s[2].img[s[2].end : s[2].end+segment.FrameHeaderSize])
				s[2].write(t)
			},
			want: []want{fmt.Sprintf("missing-end 3:%d", build(3, payloads(3, 5), true).end)},
			exit: 1,
		},
		{
			name: "unsealed segment before a sealed one",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				clear(s[1].img[len(s[1].img)-segment.FooterSize:])
				s[1].write(t)
			},
			want: []want{fmt.Sprintf("missing-end 2:%d", build(2, payloads(2, 5), true).end)},
			exit: 1,
		},
		{
			// Segments are sealed in order: a seal that did not finish
			// before a sealed segment is damage, as a missing footer is.
			name: "footer stored but its magic, before a sealed segment",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				clear(s[1].img[len(s[1].img)-segment.FooterSize:][:len(segment.FooterMagic)])
				s[1].write(t)
			},
			want: []want{fmt.Sprintf("missing-end 2:%d", build(2, payloads(2, 5), true).end)},
			exit: 1,
		},
		{
			name: "garbage after END",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[0].img[s[0].end+segment.FrameHeaderSize+100] = 0xEE
				s[0].write(t)
			},
			want: []want{fmt.Sprintf("garbage-after-end 1:%d", build(1, payloads(1, 5), true).end+segment.FrameHeaderSize+100)},
			exit: 1,
		},
		{
			name: "footer record count",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[1].setFooter(t, func(f *segment.Footer) { f.Records++ })
			},
			// The changed footer changes nothing digested: segment 3 still chains.
			want: []want{fmt.Sprintf("footer 2:%d", fa)},
			exit: 1,
		},
		{
			name: "footer digest",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[0].setFooter(t, func(f *segment.Footer) { f.Digest[5] ^= 1 })
			},
			want: []want{fmt.Sprintf("footer 1:%d", fa), fmt.Sprintf("chain 2:%d", fa)},
			exit: 1,
		},
		{
			name: "footer checksum",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[2].img[fa+40] ^= 4
				s[2].write(t)
			},
			want: []want{fmt.Sprintf("footer 3:%d", fa+124)},
			exit: 1,
		},
		{
			name: "chain",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[1].reseal(t, [segment.DigestSize]byte{1})
			},
			// Segment 2 chains to the wrong digest, and segment 3 to the
			// digest segment 2 had before.
			want: []want{fmt.Sprintf("chain 2:%d", fa), fmt.Sprintf("chain 3:%d", fa)},
			exit: 1,
		},
		{
			name: "first segment chains from non-zero",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[0].reseal(t, [segment.DigestSize]byte{1})
			},
			// Segment 1 is the first of its log: it chains from zeros.
			// Resealing it also changed its digest, so segment 2 breaks.
			want: []want{fmt.Sprintf("chain 1:%d", fa), fmt.Sprintf("chain 2:%d", fa)},
			exit: 1,
		},
		{
			name: "gap",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				rm(t, s[1].path)
			},
			want: []want{"gap 2:0"},
			exit: 1,
		},
		{
			name:    "oldest deleted",
			corrupt: func(t *testing.T, l *testLog, s []*seg) { rm(t, s[0].path) },
			exit:    0,
		},
		{
			name: "unexpected files",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				for _, n := range []string{"notes.txt", segment.FileName(9) + segment.TempExt} {
					if err := os.WriteFile(filepath.Join(l.dir, n), []byte("x"), 0o640); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: []want{"unexpected 0:0", "unexpected 0:0"},
			exit: 0,
		},
		{
			name: "header checksum",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[1].img[33] ^= 2 // creation time
				s[1].write(t)
			},
			// The frames still check with the file name's sequence; the
			// digest mismatch is explained by the header and not repeated.
			want: []want{"torn 2:60"},
			exit: 1,
		},
		{
			name: "truncated",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				if err := os.Truncate(s[1].path, 1000); err != nil {
					t.Fatal(err)
				}
			},
			// The cut is after the END frame: the records are intact, the
			// footer is gone.
			want: []want{"torn 2:1000", fmt.Sprintf("missing-end 2:%d", build(2, payloads(2, 5), true).end)},
			exit: 1,
		},
		{
			name: "renamed file",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				if err := os.Rename(s[2].path, filepath.Join(l.dir, segment.FileName(4))); err != nil {
					t.Fatal(err)
				}
			},
			// The finding is placed by the file's name, as readers place
			// its records (it said 3:16, the header's number, and a gap
			// at 3 beside it).
			want: []want{"gap 3:0", "torn 4:16"},
			exit: 1,
		},
		{
			name: "timestamp before creation",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				img := s[1].img
				off := s[1].offs[3]
				segment.PutFrame(img, 2, off, segment.TypeData, baseCreated-7200*second, s[1].payload[3])
				s[1].reseal(t, s[0].footer.Digest)
			},
			want: []want{fmt.Sprintf("torn 2:%d", build(2, payloads(2, 5), true).offs[3]), fmt.Sprintf("chain 3:%d", fa)},
			exit: 1,
		},
		{
			name: "timestamp check off",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				img := s[1].img
				off := s[1].offs[3]
				segment.PutFrame(img, 2, off, segment.TypeData, baseCreated-7200*second, s[1].payload[3])
				s[1].reseal(t, s[0].footer.Digest)
			},
			opts: Options{TimeTolerance: -1},
			// Resealing changed segment 2's digest: segment 3 no longer chains.
			want: []want{fmt.Sprintf("chain 3:%d", fa)},
			exit: 1,
		},
		{
			name: "padding byte",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				off := s[0].offs[0]
				n := int64(segment.FrameHeaderSize + len(s[0].payload[0]))
				if segment.FrameSize(len(s[0].payload[0])) == n {
					t.Fatal("fixture record 0 needs padding")
				}
				s[0].img[off+n] = 1
				s[0].write(t)
			},
			want: []want{fmt.Sprintf("torn 1:%d", 64+segment.FrameHeaderSize+int64(len(payloads(1, 1)[0])))},
			exit: 1,
		},
		{
			name: "crash: reserved frame in the last segment",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				o := l.open(4, false)
				segment.StoreLength(o.img, o.offs[1], -segment.LoadLength(o.img, o.offs[1]))
				o.write(t)
			},
			want: []want{
				fmt.Sprintf("unfinished 4:%d residue", build(4, payloads(4, 4), false).offs[1]),
				fmt.Sprintf("unfinished 4:%d residue", build(4, payloads(4, 4), false).end),
			},
			exit: 3, strict: 1,
		},
		{
			name: "crash: END written, not sealed, next segment prepared",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				l.open(3, true)
				l.open(0, false)
			},
			want: []want{fmt.Sprintf("unfinished 4:%d residue", build(4, payloads(4, 3), true).end)},
			exit: 3, strict: 1,
		},
		{
			// A writer under `none` stores the footer through the mapping,
			// magic last: killed in the middle, it leaves every byte but
			// the magic, a seal that did not finish (recovery seals it).
			name: "crash: footer stored without its magic, next segment prepared",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				l.storeFooterButMagic(l.open(3, true))
				l.open(0, false)
			},
			want: []want{fmt.Sprintf("unfinished 4:%d residue", build(4, payloads(4, 3), true).end)},
			exit: 3, strict: 1,
		},
		{
			name: "crash during rotation: no END, next segment written",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				l.open(3, false)
				l.open(2, false)
			},
			want: []want{
				fmt.Sprintf("unfinished 4:%d residue", build(4, payloads(4, 3), false).end),
				fmt.Sprintf("unfinished 5:%d residue", build(5, payloads(5, 2), false).end),
			},
			exit: 3, strict: 1,
		},
		{
			name: "damaged header in the open tail",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				o := l.open(2, false)
				o.img[40] = 1 // reserved header bytes
				o.write(t)
			},
			// Recovery leaves it as it is: not residue (refused_test.go).
			want: []want{"torn 4:60", fmt.Sprintf("missing-end 4:%d", build(4, payloads(4, 2), false).end)},
			exit: 1,
		},
		{
			name: "clean close leaves an empty prepared segment",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				l.open(0, false)
			},
			exit: 0,
		},
		{
			name: "torn frame in the open tail is damage",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				o := l.open(3, false)
				o.img[o.offs[1]+30] ^= 1
				o.write(t)
			},
			want: []want{
				fmt.Sprintf("torn 4:%d", build(4, payloads(4, 3), false).offs[1]),
				fmt.Sprintf("missing-end 4:%d", build(4, payloads(4, 3), false).end),
			},
			exit: 1,
		},
		{
			name: "quick mode misses payload damage",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[1].img[s[1].offs[2]+segment.FrameHeaderSize+3] ^= 0x10
				s[1].write(t)
			},
			opts: Options{Quick: true},
			exit: 0,
		},
		{
			name: "quick mode checks footers and END",
			corrupt: func(t *testing.T, l *testLog, s []*seg) {
				s[0].img[s[0].end+9] ^= 1 // END header
				s[0].write(t)
				s[1].setFooter(t, func(f *segment.Footer) { f.PrevDigest[0] ^= 1 })
			},
			opts: Options{Quick: true},
			want: []want{fmt.Sprintf("missing-end 1:%d", build(1, payloads(1, 5), true).end), fmt.Sprintf("chain 2:%d", fa)},
			exit: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLog(t)
			s := []*seg{l.sealed(5), l.sealed(5), l.sealed(5)}
			tc.corrupt(t, l, s)
			rep := mustDir(t, l.dir, tc.opts)
			var got []string
			for _, f := range rep.Findings {
				got = append(got, key(f))
			}
			slices.Sort(got)
			w := slices.Clone(tc.want)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Errorf("findings:\n%s\nwant %q", summary(rep), w)
			}
			if c := rep.ExitCode(false); c != tc.exit {
				t.Errorf("exit code %d, want %d\n%s", c, tc.exit, summary(rep))
			}
			strict := tc.strict
			if strict == 0 {
				strict = tc.exit
			}
			if c := rep.ExitCode(true); c != strict {
				t.Errorf("strict exit code %d, want %d", c, strict)
			}
			for _, f := range rep.Findings {
				if f.Reason == "" || f.Path == "" {
					t.Errorf("finding without reason or path: %+v", f)
				}
			}
		})
	}
}

func rm(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// Verifying files picks up the log's context from their directory.
func TestFiles(t *testing.T) {
	l := newTestLog(t)
	s1, s2 := l.sealed(2), l.sealed(2)
	o := l.open(2, false)
	rep, err := Files([]string{s2.path, s1.path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != 2 || rep.Segments[0].Seq != 1 || !rep.Segments[1].ChainChecked || rep.ExitCode(false) != 0 {
		t.Fatalf("files: %+v\n%s", rep.Segments, summary(rep))
	}
	// An unsealed file that is the newest of its directory is the open tail.
	rep, err = Files([]string{o.path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(false) != ExitUnfinished || rep.Segments[0].State != StateOpen {
		t.Fatalf("open tail file: %+v\n%s", rep.Segments, summary(rep))
	}
	// Once a later segment is sealed, it is not.
	l.sealed(1)
	rep, _ = Files([]string{o.path}, Options{})
	if rep.ExitCode(false) != ExitFindings || rep.Segments[0].State != StateUnsealed {
		t.Fatalf("unsealed middle file: %+v\n%s", rep.Segments, summary(rep))
	}
	if _, err := Files([]string{l.dir}, Options{}); err == nil {
		t.Error("Files accepted a directory")
	}
	if _, err := Dir(s1.path, Options{}); err == nil {
		t.Error("Dir accepted a file")
	}
	if _, err := Paths([]string{filepath.Join(l.dir, "nope")}, Options{}); err == nil {
		t.Error("a missing path is not an error")
	}
}

// A file that cannot be read is an I/O error (exit 2), not damage: one
// named on the command line that is not a regular file (whoever runs the
// test), and, unless root, whose permissions deny reading, in a directory.
func TestUnreadable(t *testing.T) {
	l := newTestLog(t)
	l.sealed(2)
	s := l.sealed(2)
	fifo := filepath.Join(t.TempDir(), segment.FileName(7))
	if err := unix.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	rep, err := Paths([]string{fifo}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode(false) != ExitError || len(rep.Segments) != 1 || rep.Segments[0].State != StateUnreadable || rep.Segments[0].Status != Fail {
		t.Fatalf("a FIFO named as a segment: exit %d %+v", rep.ExitCode(false), rep.Segments)
	}
	if os.Geteuid() == 0 {
		return // permissions do not deny root
	}
	if err := os.Chmod(s.path, 0); err != nil {
		t.Fatal(err)
	}
	rep = mustDir(t, l.dir, Options{})
	if rep.ExitCode(false) != ExitError || rep.Segments[1].State != StateUnreadable || rep.Segments[1].Status != Fail {
		t.Fatalf("unreadable: exit %d %+v", rep.ExitCode(false), rep.Segments[1])
	}
}

// Findings beyond MaxFindings are counted, not listed; the limit is per
// segment and class, so more torn frames than the limit do not hide the
// segment's garbage-after-end finding.
func TestMaxFindings(t *testing.T) {
	l := newTestLog(t)
	s := l.sealed(40)
	for i, off := range s.offs {
		if i%2 == 0 {
			s.img[off+10] = 1 // reserved header bytes: torn
		}
	}
	s.img[s.end+40] = 0xEE // after the END frame's header
	s.write(t)
	rep := mustDir(t, l.dir, Options{MaxFindings: 5})
	listed := map[Class]int{}
	for _, f := range rep.Findings {
		listed[f.Class]++
	}
	if listed[Torn] != 5 || listed[GarbageAfterEnd] != 1 || len(rep.Findings) != 6 ||
		rep.Totals.Findings[Torn] != 20 || rep.Totals.Omitted != 15 || rep.Segments[0].Findings != 21 {
		t.Fatalf("listed %v, totals %+v, segment %+v", listed, rep.Totals, rep.Segments[0])
	}
}

// An empty directory is a clean (empty) log; a segment-less name is fine.
func TestEmptyDir(t *testing.T) {
	rep := mustDir(t, t.TempDir(), Options{})
	if rep.ExitCode(true) != 0 || len(rep.Segments) != 0 {
		t.Fatalf("%+v", rep)
	}
}

// A finding's position is its segment and offset; which classes are fatal;
// times are formatted as dates.
func TestFindingPosition(t *testing.T) {
	f := Finding{Class: Torn, Seq: 3, Offset: 4096}
	if f.Position().String() != "3:4096" || !f.Fatal() {
		t.Fatal(f.Position())
	}
	if (Finding{Class: Unexpected}).Fatal() || (Finding{Class: Unfinished, Residue: true}).Fatal() {
		t.Fatal("unexpected and residue must not be fatal")
	}
	if !strings.Contains(fmtTime(0), "1970") {
		t.Fatal(fmtTime(0))
	}
}

// A mapped segment file that shrinks while it is checked raises SIGBUS on
// the pages that went away; verify reports the file as unreadable, naming
// it and the offset, instead of dying. (At 2 MiB a sealed segment's digest
// runs on a goroutine of its own, which has its own guard; a truncation
// takes the footer's page first, so the fault comes before the digest
// starts, and that guard is not reached here.)
func TestFileTruncatedWhileChecked(t *testing.T) {
	for _, size := range []int64{testSize, 2 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), segment.FileName(1))
			img := segment.NewImage(1, size, baseCreated)
			off := int64(segment.HeaderSize)
			for i := 0; off+segment.FrameSize(100) <= segment.DataLimit(size); i++ {
				off = segment.PutFrame(img, 1, off, segment.TypeData, baseCreated+int64(i), bytes.Repeat([]byte{'r'}, 100))
			}
			segment.PutEnd(img, 1, off, baseCreated+second)
			if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, baseCreated+second); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, img, 0o640); err != nil {
				t.Fatal(err)
			}
			im, err := segment.OpenImage(path) // mapped, as an unsealed or --quick check would be
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if err := os.Truncate(path, 4096); err != nil {
				t.Fatal(err)
			}
			o := Options{}.withDefaults()
			r := newResult(path, &o)
			checkGuarded(im, r, &o, nil)
			if r.rep.State != StateUnreadable || r.ioErr == nil {
				t.Fatalf("state %q, error %v; want unreadable with an error", r.rep.State, r.ioErr)
			}
			msg := r.ioErr.Error()
			var at int64
			if _, rest, ok := strings.Cut(msg, "no data at offset "); ok {
				fmt.Sscan(rest, &at)
			}
			if !strings.Contains(msg, path) || !strings.Contains(msg, "changed while it was read") || at < 4096 || at >= size {
				t.Fatalf("error %q should name the file and an offset past the new end, 4096", msg)
			}
		})
	}
}
