// Package speccheck holds, in its tests only, a clean-room decoder and
// verifier of the auditseg format written from docs/FORMAT.md alone, and
// the tests that hold pkg/segment, pkg/reader and pkg/verify to it. It
// exists to keep FORMAT.md a complete specification: a field or rule the
// document does not state shows up here as a disagreement.
package speccheck
