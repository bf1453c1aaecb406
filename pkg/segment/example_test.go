package segment_test

import (
	"fmt"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Build a small segment with the test builders, leave one reservation
// uncommitted as a crashed writer would, and walk it.
func ExampleWalk() {
	const seq = 1
	img := segment.NewImage(seq, segment.MinSegmentSize, 0)
	off := segment.PutFrame(img, seq, segment.HeaderSize, segment.TypeData, 100, []byte("login alice"))
	// A writer claimed 40 bytes here and died before committing.
	segment.StoreLength(img, off, -40)
	off += 40
	off = segment.PutFrame(img, seq, off, segment.TypeData, 200, []byte("logout alice"))
	segment.PutEnd(img, seq, off, 300)

	segment.Walk(img, seq, segment.HeaderSize, segment.Quiescent, func(ev segment.Event) bool {
		switch ev.Kind {
		case segment.EvFrame:
			fmt.Printf("%d: record %q\n", ev.Offset, ev.Frame.Payload)
		default:
			fmt.Printf("%d: %s, %d bytes\n", ev.Offset, ev.Kind, ev.Len)
		}
		return true
	})
	// Output:
	// 64: record "login alice"
	// 104: reserved, 40 bytes
	// 144: record "logout alice"
	// 184: end, 65224 bytes
}

func ExampleSeal() {
	var prev [segment.DigestSize]byte // the first segment chains from zeros
	for seq := uint64(1); seq <= 2; seq++ {
		img := segment.NewImage(seq, segment.MinSegmentSize, 0)
		off := segment.PutFrame(img, seq, segment.HeaderSize, segment.TypeData, 5, []byte("record"))
		segment.PutEnd(img, seq, off, 6)
		f, err := segment.Seal(img, prev, 0, 7)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("segment %d: %d record(s), END at %d, chains to previous: %v\n", f.Seq, f.Records, f.EndOffset, f.PrevDigest == prev)
		prev = f.Digest
	}
	// Output:
	// segment 1: 1 record(s), END at 96, chains to previous: true
	// segment 2: 1 record(s), END at 96, chains to previous: true
}

func ExampleParsePosition() {
	p, err := segment.ParsePosition("42:4096")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Seq, p.Offset, p, p.Compare(segment.Position{Seq: 43, Offset: 64}))
	// Output: 42 4096 42:4096 -1
}
