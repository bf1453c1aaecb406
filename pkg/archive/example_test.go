package archive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/auditseg/auditseg/pkg/archive"
	"github.com/auditseg/auditseg/pkg/segment"
)

// Compress the sealed segments of a log directory. Archives are read back
// by segment.OpenImage like the originals.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "auditseg-example")
	defer os.RemoveAll(dir)
	// Three segments: two sealed, and the newest, which is never touched.
	var prev [segment.DigestSize]byte
	for seq := uint64(1); seq <= 3; seq++ {
		img := segment.NewImage(seq, segment.MinSegmentSize, 0)
		end := segment.PutFrame(img, seq, segment.HeaderSize, segment.TypeData, 0, []byte("user=alice action=login"))
		segment.PutEnd(img, seq, end, 0)
		f, _ := segment.Seal(img, prev, 0, 0)
		prev = f.Digest
		os.WriteFile(filepath.Join(dir, segment.FileName(seq)), img, 0o640)
	}

	res, err := archive.Run(context.Background(), dir, archive.Options{})
	if err != nil || res.Err() != nil {
		fmt.Println(err, res.Err())
		return
	}
	for _, s := range res.Segments {
		fmt.Println(filepath.Base(s.Archive), s.Outcome, "original removed:", s.OriginalRemoved)
	}
	for _, s := range res.Plan.Skipped {
		fmt.Println(filepath.Base(s.Path), "skipped:", s.Reason)
	}

	im, err := segment.OpenImage(filepath.Join(dir, segment.ArchiveName(1)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer im.Close()
	// An archive holds a sealed segment: walked Sealed, a claim or a zero
	// gap in it is damage, not a dead writer's leftover.
	im.Walk(segment.HeaderSize, segment.Sealed, func(ev segment.Event) bool {
		if ev.Kind == segment.EvFrame {
			fmt.Printf("%s\n", ev.Frame.Payload)
		}
		return true
	})
	// Output:
	// 00000000000000000001.seg.zst compressed original removed: true
	// 00000000000000000002.seg.zst compressed original removed: true
	// 00000000000000000003.seg skipped: newest segment (a writer appends to it, or will)
	// user=alice action=login
}
