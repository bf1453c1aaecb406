// Package verify checks auditseg logs: every segment on its own (header,
// frames, footer) and the log as a whole (sequence gaps, the digest chain,
// what a writer left behind), and says exactly what is wrong, where, and
// how bad. It is the CI gate behind `auditseg verify`, and Inspect is the
// dump behind `auditseg inspect`.
//
// All byte-level decoding is done by package segment (DecodeHeader,
// DecodeFooter, DecodeFrame, Walk, ZeroFrom, Digest); this package decides
// what the results mean. Segment files are read through segment.File, each
// opened once, and archives through segment.OpenImage, so .seg.zst
// archives are verified like segment files.
//
// # What is checked
//
// Per segment: the header (magic, version, checksum, size against the
// file, sequence against the file name); every frame with the shared
// walker (alignment, type, length bounds, CRC seeded with the segment
// sequence and offset); the alignment padding after each record; each
// record's timestamp against the segment's creation and sealing times
// (Options.TimeTolerance); the bytes after the END frame; and for a sealed
// segment, that END is at the footer's end offset and that the record
// count, time range and BLAKE3 digest in the footer match the contents.
// After damage the walk resumes at the next frame whose CRC matches (or
// after a reserved frame's claimed extent) and the finding says how many
// bytes could not be attributed, so one damaged frame hides nothing else.
// When damage is found inside the digested bytes, the digest, record
// count and time range mismatches it causes are not reported again
// (SegmentReport.DigestOK still tells).
//
// Across a log directory: missing sequence numbers (gap; the chain is not
// checked across a gap), each sealed footer's previous-digest against the
// previous segment's digest (the first segment present starts the chain,
// so deleting the oldest segments is fine; segment 1, the first a writer
// made, must chain from zeros), and files that do not belong. Segments
// that recovery left unsealed (damaged) are not part of the chain: the
// next sealed segment must chain to the last one sealed before them (from
// zeros if none was), and is checked so when every segment between is
// present and reads as one recovery left: its footer's magic zero in the
// file (all zeros, or a seal that did not finish), and a bad header or
// torn frame with an intact frame after the last such damage. A segment
// that was sealed and damaged afterwards (a damaged footer whose magic is
// there, a file cut short, damage from its records to its end)
// is not: the next one chains to its lost digest, and that link is not
// checked (chain_checked false), the damage being reported; unless only
// its footer was lost, its header and every frame up to END intact: its
// digest is then computed again from them, and the next link checked
// against it. An archive whose content lost its footer is chained by
// the copy its summary holds, if that checks. Past a sealed segment file
// whose header recovery refuses (bad, or disagreeing with its name or
// size: then the footer the file ends with, if the header's place for it
// holds no valid one), which recovery chains past when it is the newest, the next
// sealed segment may chain to its digest or to the one before it (past
// a run of them, to any of the run's or the one before the run; past one
// whose own link is not checked, the next link is not checked either);
// past an archive whose footer's sequence number is not its name's, to
// its digest or to zeros, as recovery chains past it.
// Segments removed while the log is read, oldest first as retention
// removes them, are not a gap: a segment listed and gone when it was to
// be opened is left out of the report, and the hole it leaves is a gap
// only if a segment older than it is still there (or the hole also holds
// a number that was already missing when the directory was listed).
//
// # Stopping a run
//
// DirContext, FilesContext and PathsContext stop when their context is
// done: no segment is started after that, and a wait that could last
// (for another process's lease on a segment to be given up, up to
// /proc/sys/fs/lease-break-time and a second, as segment.OpenNoFollow
// waits; before a live writer's segments are read again) ends. A stopped
// run returns no report, only an error for which errors.Is(err,
// context.Canceled) (or context.DeadlineExceeded) holds, with the
// context's cause: what was read by then is no verdict. Dir, Files and
// Paths run to the end.
//
// # The unsealed tail
//
// The newest segments of a log may be unsealed: a writer keeps the
// segment it appends to, the next one (prepared ahead, empty), the files
// of the two after it (created ahead, empty) and any finished segment
// whose last frames are still being committed. That run
// of newest segments without a footer is the log's tail. An unsealed
// segment before a sealed one is "missing-end". Sealed means as recovery
// counts it: an archive, or a valid footer under a header recovery
// accepts (segment.SealedFooter); a valid footer under a header it
// refuses does not end the tail, as recovery seals what comes before it.
// Nor does the tail reach below the first segment a live writer appends
// to (the "from N" line of its LOCK file, read before any segment):
// recovery is over there, and left what it did not seal as it is,
// damaged, for good, as the reader takes it. An unsealed segment below N
// is "missing-end" as before a sealed one, its reservations fatal
// "unfinished": no writer finishes them and no recovery repairs them.
//
//   - Writer alive (segment.WriterAlive): the tail is work in progress.
//     Reserved frames, zero gaps and missing END frames or footers there
//     are not findings; damage is, after a recheck that rules out a frame
//     or footer that was being stored while it was read.
//   - Writer gone: the tail is what a crash left. Each of its segments but
//     the newest gets one "unfinished" finding (not sealed), even one with
//     no frame (a prepared segment the crashed writer had rotated into),
//     plus one per reserved frame or zero gap, all marked as crash
//     residue: writer.Open repairs them (seals them) without losing a
//     committed record. The newest segment gets the "unfinished" finding
//     only if it holds a frame; with none it is "prepared", not a finding.
//     A segment there that recovery leaves as it is is no residue: a bad
//     header or one that disagrees with the file, a torn frame, or an END
//     claim (a reservation up to the record limit) with a non-zero byte
//     behind its header, which an END would hide committed frames under
//     (segment.Refusal, recovery's own judgment). It is judged as after
//     that recovery, below the next writer's first segment: "missing-end",
//     its reservations fatal "unfinished". So below a dead writer's first
//     segment too (what is unsealed there, its recovery left so), without
//     the LOCK file's word: the next recovery looks at the same bytes.
//
// # Exit codes
//
// Report.ExitCode decides the verdict for every front end:
//
//	0  clean (unexpected files are reported but do not count)
//	1  at least one fatal finding: torn, unfinished outside the crash tail
//	   or in a segment of it that recovery leaves unsealed, missing-end,
//	   garbage-after-end, footer, chain or gap
//	2  a usage or I/O error: a path that does not exist, a directory that
//	   cannot be listed, a segment that cannot be read
//	3  only crash residue: unfinished frames and unsealed segments in the
//	   tail of a log whose writer is gone, each of which recovery seals;
//	   nothing committed is missing, and opening the log with the writer
//	   repairs it. strict makes it 1.
//
// Fatal findings win over I/O errors, which win over crash residue.
//
// # JSON
//
// `auditseg verify --output json` prints a Report as one JSON document.
// The field names are stable; new fields may be added, and an incompatible
// change bumps "version".
//
//	version            layout version, currently 1
//	quick              true for --quick (no frame CRCs, no digests)
//	logs[]             one per log directory involved
//	  dir              the directory
//	  dir_base64       its bytes, when not valid UTF-8 (else omitted)
//	  writer_alive     a writer held the log's lock when the check began or ended
//	  writer_pid       its pid as recorded in LOCK (omitted when none)
//	segments[]         one per segment file, in log order
//	  path             the file
//	  path_base64      its bytes, when not valid UTF-8 (else omitted)
//	  seq              sequence number (from the header when it is valid)
//	  archived         a .seg.zst archive
//	  state            sealed | recovered | open | prepared | unsealed |
//	                   damaged | unreadable (see State)
//	  status           PASS | WARN (crash residue only) | FAIL
//	  live             in the tail of a live writer
//	  bytes            segment size (decompressed for archives)
//	  file_bytes       size of the file itself
//	  records          DATA records found (the footer's count with --quick)
//	  end_offset       offset of the END frame, -1 if none was found
//	                   (an archive with --quick: the footer copy's)
//	  digest           footer digest, hex (omitted when not sealed)
//	  prev_digest      footer previous-digest, hex (omitted when not sealed)
//	  digest_checked   the digest was recomputed
//	  digest_ok        and matched
//	  chain_checked    prev_digest was compared with the previous segment's
//	                   digest, or, past segments recovery left unsealed,
//	                   with the last sealed one's (or zeros)
//	  findings         findings in this segment, listed or not
//	  error            why the file could not be read (omitted when read)
//	findings[]         in log order, then by offset; unexpected files last
//	  class            torn | unfinished | missing-end | garbage-after-end |
//	                   footer | chain | gap | unexpected
//	  path             the segment file (for gap: the first missing one's
//	                   name; for unexpected: the file)
//	  path_base64      its bytes, when not valid UTF-8 (else omitted)
//	  seq              segment sequence number (0 for unexpected files)
//	  offset           file offset of the problem
//	  position         "SEQ:OFFSET" (omitted for unexpected files)
//	  bytes            bytes covered that no record could be read from
//	  reason           one line, human readable (not for parsing)
//	  crash_residue    part of a dead writer's tail; repaired by recovery
//	  fatal            counts towards exit code 1
//	totals
//	  segments, sealed, records, bytes
//	  findings         count per class, every class present
//	  fatal, crash_residue
//	  errors           segments that could not be read
//	  omitted          findings counted but not listed (Options.MaxFindings)
//	  elapsed_seconds, bytes_per_second
//	anchors[]          one per Options.Anchors entry, in segment order;
//	                   omitted when none was given
//	  seq, digest      the anchor (digest in hex)
//	  checked          its segment was compared (or, removed, the
//	                   previous digest of the oldest segment present,
//	                   the next one), or found missing (a chain
//	                   finding); false: older than that, or unreadable
//	  ok               the segment's footer digest is the anchor's
package verify
