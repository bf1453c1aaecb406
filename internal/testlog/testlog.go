// Package testlog makes logs for the tests of several packages. It is
// apart from internal/testfs, which the writer's and segment's own
// (internal) tests import: a package that imports the writer there would
// make a cycle.
package testlog

import (
	"testing"

	"github.com/auditseg/auditseg/pkg/segment"
	"github.com/auditseg/auditseg/pkg/writer"
)

// Write opens a writer on dir with opts, appends n records, record(i)
// the i-th, closes the writer and returns the listing of dir: the log a
// test then damages, replaces files of, or reads.
func Write(t testing.TB, dir string, opts writer.Options, n int, record func(i int) []byte) segment.Listing {
	t.Helper()
	w, err := writer.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := w.Append(record(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := segment.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
