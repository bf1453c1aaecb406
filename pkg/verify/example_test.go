package verify_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/verify"
)

// Verify a log directory and act on the verdict.
func ExampleDir() {
	dir, _ := os.MkdirTemp("", "auditseg-example")
	defer os.RemoveAll(dir)
	// A one-segment log, built with the segment builders.
	img := segment.NewImage(1, segment.MinSegmentSize, 1_700_000_000_000_000_000)
	off := segment.PutFrame(img, 1, segment.HeaderSize, segment.TypeData, 1_700_000_000_000_000_001, []byte("hello"))
	segment.PutEnd(img, 1, off, 1_700_000_000_000_000_002)
	if _, err := segment.Seal(img, [segment.DigestSize]byte{}, 0, 1_700_000_000_000_000_003); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segment.FileName(1)), img, 0o640); err != nil {
		panic(err)
	}

	rep, err := verify.Dir(dir, verify.Options{})
	if err != nil {
		panic(err)
	}
	for _, s := range rep.Segments {
		fmt.Println(s.Status, filepath.Base(s.Path), s.State, s.Records, "records")
	}
	fmt.Println("exit code", rep.ExitCode(false))
	// Output:
	// PASS 00000000000000000001.seg sealed 1 records
	// exit code 0
}
