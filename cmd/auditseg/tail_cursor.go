package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/auditseg/auditseg/pkg/segment"
)

// Cursor files (tail --cursor-file) hold one position, "SEQ:OFFSET\n": the
// last record printed. They are replaced atomically, so a crash leaves the
// old cursor or the new one, never a torn one.

// readCursor returns the position stored in path; ok is false when the
// file does not exist or is empty (no run has printed anything yet).
func readCursor(path string) (pos segment.Position, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return pos, false, nil
	}
	if err != nil {
		return pos, false, fmt.Errorf("cursor file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return pos, false, nil
	}
	pos, err = segment.ParsePosition(s)
	if err != nil {
		return pos, false, fmt.Errorf("cursor file %s: %w", path, err)
	}
	return pos, true, nil
}

// writeCursor replaces path with pos: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced.
func writeCursor(path string, pos segment.Position) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write cursor file: %w", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write cursor file %s: %w", path, err)
	}
	if _, err := tmp.WriteString(pos.String() + "\n"); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write cursor file %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write cursor file %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write cursor file %s: fsync directory: %w", path, err)
	}
	return nil
}
