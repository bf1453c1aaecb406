package crashtest

import (
	"fmt"
	"strconv"
	"strings"
)

// KillEnv selects the crash child's injected kill point.
const KillEnv = "AUDITSEG_CRASH_KILL"

// KillPoint is a place where the crash child kills itself with SIGKILL.
//
// Syntax: [open-]WHAT[+]:N
//
//	WHAT   an Op name (create, open, fallocate, msync, fsync, rename,
//	       syncdir, syncrange, write, startrange): the Nth call of that operation; "seal": the Nth
//	       flush of a written footer (the fsync after writing it, by the
//	       sealer or by recovery: the records are durable, the footer is
//	       written, not yet flushed); "rotate": the Nth time an appender is handed a
//	       position in a newer segment than any before.
//	open-  count only calls made inside writer.Open (recovery); without
//	       it, only calls made after Open returned.
//	+      kill right after the call returns instead of right before it.
type KillPoint struct {
	Open   bool
	Op     Op   // when !Seal && !Rotate
	Seal   bool // a sealing fsync
	Rotate bool
	After  bool
	N      int
}

func (k KillPoint) String() string {
	var b strings.Builder
	if k.Open {
		b.WriteString("open-")
	}
	switch {
	case k.Seal:
		b.WriteString("seal")
	case k.Rotate:
		b.WriteString("rotate")
	default:
		b.WriteString(k.Op.String())
	}
	if k.After {
		b.WriteByte('+')
	}
	fmt.Fprintf(&b, ":%d", k.N)
	return b.String()
}

// ParseKillPoint parses the syntax above.
func ParseKillPoint(s string) (KillPoint, error) {
	var k KillPoint
	what, n, ok := strings.Cut(s, ":")
	if !ok {
		return k, fmt.Errorf("kill point %q: want [open-]WHAT[+]:N", s)
	}
	var err error
	if k.N, err = strconv.Atoi(n); err != nil || k.N < 1 {
		return k, fmt.Errorf("kill point %q: bad count", s)
	}
	what, k.Open = strings.CutPrefix(what, "open-")
	what, k.After = strings.CutSuffix(what, "+")
	switch what {
	case "seal":
		k.Seal = true
	case "rotate":
		k.Rotate = true
		if k.Open || k.After {
			return k, fmt.Errorf("kill point %q: rotate takes neither open- nor +", s)
		}
	default:
		if k.Op, err = ParseOp(what); err != nil {
			return k, fmt.Errorf("kill point %q: %w", s, err)
		}
	}
	return k, nil
}

// KillPoints are the injected points the kill loop cycles through: every
// step of preparing a segment (create, fallocate, header fsync, rename,
// directory fsync, before and after), sealing, rotation, Sync flushes, and
// the same steps inside recovery.
var KillPoints = []string{
	"rotate:1", "rotate:3",
	"create:1", "create+:2", "fallocate:1", "fallocate+:1", "fsync:1", "fsync+:2",
	"rename:1", "rename+:1", "rename+:3", "syncdir:1", "syncdir+:2",
	"seal:1", "seal+:1", "seal:2", "msync:2", "msync+:5",
	"open-open:1", "open-open+:1", "open-fsync:1", "open-seal:1", "open-seal+:1", "open-syncdir:1",
	"open-create:1", "open-rename+:1",
}
