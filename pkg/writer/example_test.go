package writer_test

import (
	"fmt"
	"log"
	"os"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20, Sync: writer.SyncInterval})
	if err != nil {
		log.Fatal(err)
	}
	pos, err := w.Append([]byte("user=alice action=login"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first record at", pos)

	// Reserve fills the record in place, saving a copy.
	r, err := w.Reserve(len("user=bob action=logout"))
	if err != nil {
		log.Fatal(err)
	}
	copy(r.Bytes(), "user=bob action=logout")
	if err := r.Commit(); err != nil {
		log.Fatal(err)
	}
	if err := w.Sync(); err != nil { // both records are durable now
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("second record at", r.Position().Seq, "after the first:", r.Position().Compare(pos) > 0)
	fmt.Println("segment file:", segment.FileName(pos.Seq))
	// Output:
	// first record at 1:64
	// second record at 1 after the first: true
	// segment file: 00000000000000000001.seg
}
