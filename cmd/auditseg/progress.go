package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress draws a one-line progress indicator, redrawn in place, for
// commands that may run long (verify, compress-finished). It draws only on
// a terminal and only once the run has lasted progressDelay, so short runs
// and redirected output never see it. Safe for concurrent Update calls.
type progress struct {
	w     io.Writer
	label string
	on    bool
	start time.Time

	mu    sync.Mutex
	last  time.Time
	width int // length of the last line drawn, to blank it
}

const (
	progressDelay = time.Second            // show nothing for runs shorter than this
	progressEvery = 100 * time.Millisecond // redraw at most this often
)

// newProgress returns an indicator writing to w (normally stderr); it is
// silent unless w is a terminal.
func newProgress(w io.Writer, label string) *progress {
	return &progress{w: w, label: label, on: isTerminal(w), start: time.Now()}
}

// Update reports that done of total bytes are processed.
func (p *progress) Update(done, total int64) { p.UpdateItems(-1, 0, done, total) }

// UpdateItems is Update with a count of whole items (segments) done;
// items < 0 leaves the count out.
func (p *progress) UpdateItems(items, totalItems int, done, total int64) {
	if p == nil || !p.on {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.start) < progressDelay || now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	line := p.label + " "
	if items >= 0 {
		line += fmt.Sprintf("%d/%d segments ", items, totalItems)
	}
	line += progressText(done, total, now.Sub(p.start))
	pad := max(0, p.width-len(line))
	fmt.Fprintf(p.w, "\r%s%*s", line, pad, "")
	p.width = len(line)
}

// Done erases the indicator so that what follows starts on a clean line.
func (p *progress) Done() {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.width, "")
		p.width = 0
	}
}

// progressText renders "37% 1.2 GiB/3.3 GiB 410 MiB/s ETA 5s".
func progressText(done, total int64, elapsed time.Duration) string {
	pct := ""
	if total > 0 {
		pct = fmt.Sprintf("%3d%% ", min(100, done*100/total))
	}
	rate, eta := "", ""
	if s := elapsed.Seconds(); s > 0 {
		rate = " " + humanBytes(int64(float64(done)/s)) + "/s"
	}
	if done > 0 && total > done {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		eta = " ETA " + left.Round(time.Second).String()
	}
	return fmt.Sprintf("%s%s/%s%s%s", pct, humanBytes(done), humanBytes(total), rate, eta)
}

// humanBytes renders n with a binary unit: "512 B", "1.5 KiB", "3.2 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
