package testfs

import "os"

// CutFile truncates the file at path to cut; with restore, it then writes
// the bytes cut from the next page boundary on back in place. A mapping
// of the file reads the rest of the cut page as zeros without a fault,
// and the pages after it as before: a restore that skipped the partial
// page, or a hole punched there.
func CutFile(path string, cut int64, restore bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.Truncate(path, cut); err != nil || !restore {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ps := int64(os.Getpagesize())
	page := (cut/ps + 1) * ps
	_, err = f.WriteAt(b[page:], page)
	return err
}
