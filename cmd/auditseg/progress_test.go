package main

import (
	"bytes"
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		64 << 20: "64.0 MiB", 3 << 30: "3.0 GiB", 5 << 40: "5.0 TiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgressText(t *testing.T) {
	got := progressText(1<<30, 4<<30, 2*time.Second)
	if want := " 25% 1.0 GiB/4.0 GiB 512.0 MiB/s ETA 6s"; got != want {
		t.Errorf("progressText = %q, want %q", got, want)
	}
}

// A progress indicator on something that is not a terminal draws nothing.
func TestProgressSilentOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "verify")
	p.start = time.Now().Add(-time.Hour) // long run
	p.Update(1, 2)
	p.Done()
	if buf.Len() != 0 {
		t.Errorf("drew %q on a non-terminal", buf.String())
	}
	var nilp *progress
	nilp.Update(1, 2) // a nil indicator is a valid "no progress"
	nilp.Done()
}

// On a terminal, the line appears only after progressDelay and is erased by Done.
func TestProgressDraw(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, label: "verify", on: true, start: time.Now()}
	p.Update(1, 2)
	if buf.Len() != 0 {
		t.Fatalf("drew %q before the delay", buf.String())
	}
	p.start = time.Now().Add(-2 * progressDelay)
	p.Update(1, 2)
	if !bytes.Contains(buf.Bytes(), []byte("\rverify  50%")) {
		t.Fatalf("no progress line: %q", buf.String())
	}
	p.Done()
	if !bytes.HasSuffix(buf.Bytes(), []byte("\r")) || p.width != 0 {
		t.Fatalf("Done did not erase the line: %q", buf.String())
	}
}
