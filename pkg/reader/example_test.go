package reader_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/writer"
)

func Example() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range []string{"user=alice action=login", "user=bob action=login", "user=alice action=logout"} {
		if _, err := w.Append([]byte(s)); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// The last two records.
	r, err := reader.Open(dir, reader.Options{
		Start:    reader.Last(2),
		OnDamage: func(d reader.Damage) { log.Print(d.Error()) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	var buf []byte
	for r.Next() {
		rec := r.Record()
		// Payload aliases the segment's mapping until the next call to
		// Next, and shows the file as it is now: AppendPayload copies it
		// and checks the copy against the CRC the record passed, so a
		// file truncated since is an error, not zeros printed as data.
		if buf, err = rec.AppendPayload(buf[:0]); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v %s\n", rec.Position, buf)
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1:112 user=bob action=login
	// 1:160 user=alice action=logout
}

// Following a live log: Wait blocks until a record arrives (or ctx ends);
// All combines Next and Wait into one loop.
func ExampleReader_All() {
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w, err := writer.Open(dir, writer.Options{SegmentSize: 1 << 20})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	r, err := reader.Open(dir, reader.Options{Follow: true})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	go func() {
		for _, s := range []string{"one", "two", "three"} {
			if _, err := w.Append([]byte(s)); err != nil {
				log.Fatal(err)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var buf []byte
	for rec, err := range r.All(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		// As in Example: copy the payload checked, not Payload itself.
		if buf, err = rec.AppendPayload(buf[:0]); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", buf)
		if n++; n == 3 {
			cancel()
		}
	}
	// Output:
	// one
	// two
	// three
}
