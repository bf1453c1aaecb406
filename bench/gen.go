package main

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// lineLen is the length of every generated input line, newline included.
const lineLen = 100

var (
	genUsers   = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "svc-backup", "svc-deploy", "root"}
	genActions = []string{"login", "logout", "read", "write", "delete", "sudo", "chmod", "config.set", "token.issue", "token.revoke", "export", "query"}
	genResults = []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "denied", "error", "mfa"}
	genHosts   = []string{"web-01", "web-02", "web-03", "db-01", "db-02", "batch-07", "vpn-gw", "k8s-node-14"}
	genPaths   = []string{"/srv/data/customers", "/etc/ssh/sshd_config", "/var/lib/app/reports", "/home/shared/finance", "/api/v2/orders", "/api/v2/users"}
)

// genLine appends one audit line of exactly lineLen bytes (newline
// included) to dst: a timestamp, host, user, action, source address,
// session, resource and result, padded with a request id. The fields
// repeat the way real audit logs do, so compression ratios are realistic.
func genLine(dst []byte, r *rand.Rand, ts time.Time) []byte {
	start := len(dst)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, " host="...)
	dst = append(dst, genHosts[r.IntN(len(genHosts))]...)
	dst = append(dst, " user="...)
	dst = append(dst, genUsers[r.IntN(len(genUsers))]...)
	dst = append(dst, " act="...)
	dst = append(dst, genActions[r.IntN(len(genActions))]...)
	dst = append(dst, " src=10."...)
	dst = strconv.AppendInt(dst, int64(r.IntN(4)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.IntN(256)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.IntN(256)), 10)
	dst = append(dst, " res="...)
	dst = append(dst, genResults[r.IntN(len(genResults))]...)
	dst = append(dst, " obj="...)
	dst = append(dst, genPaths[r.IntN(len(genPaths))]...)
	dst = append(dst, " req="...)
	const hex = "0123456789abcdef"
	for len(dst)-start < lineLen-1 {
		dst = append(dst, hex[r.IntN(16)])
	}
	dst = dst[:start+lineLen-1]
	return append(dst, '\n')
}

// genInput writes size bytes (rounded down to whole lines) of audit lines
// to path. The same seed always gives the same file.
func genInput(path string, size int64, seed uint64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := writeLines(f, size, seed)
	return n, errors.Join(err, f.Close())
}

func writeLines(w io.Writer, size int64, seed uint64) (int64, error) {
	r := rand.New(rand.NewPCG(seed, 0x61756469747365))
	bw := bufio.NewWriterSize(w, 1<<20)
	ts := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 64*lineLen)
	var n int64
	for n+lineLen <= size {
		buf = buf[:0]
		for i := 0; i < 64 && n+int64(len(buf))+lineLen <= size; i++ {
			ts = ts.Add(time.Duration(r.IntN(2000)) * time.Microsecond)
			buf = genLine(buf, r, ts)
		}
		if _, err := bw.Write(buf); err != nil {
			return n, err
		}
		n += int64(len(buf))
	}
	return n, bw.Flush()
}
