package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/auditseg/auditseg/pkg/reader"
	"github.com/auditseg/auditseg/pkg/segment"
)

// printer writes records for tail: raw payloads with a delimiter or a
// length prefix, or JSON lines.
type printer struct {
	w     *bufio.Writer
	json  bool
	delim byte
	u32be bool
	buf   []byte // reused for JSON lines
}

func newPrinter(w *bufio.Writer, f tailFlags) (*printer, error) {
	p := &printer{w: w, delim: '\n'}
	switch f.output {
	case "raw":
	case "json":
		p.json = true
		if f.delim != "newline" || f.frame != "" {
			return nil, fmt.Errorf("--delim and --framing apply to -o raw only")
		}
		return p, nil
	default:
		return nil, fmt.Errorf("-o %q: want raw or json", f.output)
	}
	switch f.delim {
	case "newline":
	case "nul":
		p.delim = 0
	default:
		return nil, fmt.Errorf("--delim %q: want newline or nul", f.delim)
	}
	switch f.frame {
	case "":
	case "u32be":
		if f.delim != "newline" {
			return nil, fmt.Errorf("--framing u32be replaces --delim: give one")
		}
		p.u32be = true
	default:
		return nil, fmt.Errorf("--framing %q: the only framing is u32be", f.frame)
	}
	return p, nil
}

// print takes the record by pointer: it runs once per record of a replay,
// and passing 64 bytes by value copied them twice more.
func (p *printer) print(rec *reader.Record) error {
	if p.json {
		p.buf = appendJSONRecord(p.buf[:0], *rec)
		_, err := p.w.Write(p.buf)
		return err
	}
	if p.u32be {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(rec.Payload)))
		p.w.Write(n[:])
		_, err := p.w.Write(rec.Payload)
		return err
	}
	p.w.Write(rec.Payload)
	return p.w.WriteByte(p.delim)
}

// appendRecord appends what print writes for the record at pos, stamped
// unixNano. Tail's bulk replay (reader.Bulk.Append) calls it from several
// goroutines: it only reads the printer's settings.
func (p *printer) appendRecord(b []byte, pos segment.Position, unixNano int64, payload []byte) []byte {
	switch {
	case p.json:
		return appendJSONRecord(b, reader.Record{Position: pos, Time: time.Unix(0, unixNano), Payload: payload})
	case p.u32be:
		b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
		return append(b, payload...)
	}
	n := len(b) + len(payload)
	if n >= cap(b) {
		b = append(b, payload...)
		return append(b, p.delim)
	}
	// One capacity check and a copy: two appends cost a tenth of a replay.
	b = b[:n+1]
	copy(b[n-len(payload):], payload)
	b[n] = p.delim
	return b
}

// jsonTime is RFC 3339 with all nine digits of nanoseconds, so that times
// sort as strings and keep their full precision.
const jsonTime = "2006-01-02T15:04:05.000000000Z07:00"

// appendJSONRecord appends one JSON line:
//
//	{"position":"1:64","segment":1,"offset":64,"time":"...","payload":"..."}
//
// with "payload_base64" instead of "payload" when the payload is not valid
// UTF-8.
func appendJSONRecord(b []byte, rec reader.Record) []byte {
	b = append(b, `{"position":"`...)
	b = strconv.AppendUint(b, rec.Position.Seq, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, rec.Position.Offset, 10)
	b = append(b, `","segment":`...)
	b = strconv.AppendUint(b, rec.Position.Seq, 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Position.Offset, 10)
	b = append(b, `,"time":"`...)
	b = rec.Time.UTC().AppendFormat(b, jsonTime)
	if utf8.Valid(rec.Payload) {
		b = append(b, `","payload":`...)
		b = appendJSONString(b, rec.Payload)
	} else {
		b = append(b, `","payload_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, rec.Payload)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, valid UTF-8, as a JSON string. U+2028 and
// U+2029 are escaped too, as encoding/json does, so that lines embed in
// JavaScript.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
