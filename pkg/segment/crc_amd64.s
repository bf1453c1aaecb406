#include "textflag.h"

// TAIL finishes one stream: CRC state in reg, bytes at ptr, offset idx
// already done, length n; uses R12 as the index.
#define TAIL(reg, ptr, n, lbl8, lbl1, lbldone) \
	MOVQ R10, R12 \
lbl8: \
	LEAQ 8(R12), R13 \
	CMPQ R13, n \
	JA   lbl1 \
	CRC32Q (ptr)(R12*1), reg \
	MOVQ R13, R12 \
	JMP  lbl8 \
lbl1: \
	CMPQ R12, n \
	JAE  lbldone \
	CRC32B (ptr)(R12*1), reg \
	INCQ R12 \
	JMP  lbl1 \
lbldone:

// func crc3(r *[3]uint32, p *[3][]byte)
//
// Updates three CRC32C (Castagnoli) checksums with three buffers. CRC32Q has
// a latency of three cycles and a throughput of one per cycle: one stream
// leaves the unit idle two cycles in three, so the bytes the three have in
// common (whole words) are done interleaved, each one's rest after.
TEXT ·crc3(SB), NOSPLIT, $0-16
	MOVQ r+0(FP), R11
	MOVQ p+8(FP), AX
	MOVQ 0(AX), SI
	MOVQ 8(AX), DX
	MOVQ 24(AX), DI
	MOVQ 32(AX), R14
	MOVQ 48(AX), R8
	MOVQ 56(AX), R15
	MOVL 0(R11), AX
	MOVL 4(R11), BX
	MOVL 8(R11), CX
	NOTL AX
	NOTL BX
	NOTL CX

	// R9 = min(n0, n1, n2) rounded down to a multiple of 8.
	MOVQ DX, R9
	CMPQ R14, R9
	CMOVQLT R14, R9
	CMPQ R15, R9
	CMOVQLT R15, R9
	ANDQ $~7, R9
	XORQ R10, R10

loop:
	CMPQ R10, R9
	JAE  tails
	CRC32Q (SI)(R10*1), AX
	CRC32Q (DI)(R10*1), BX
	CRC32Q (R8)(R10*1), CX
	ADDQ $8, R10
	JMP  loop

tails:
	TAIL(AX, SI, DX, t0w, t0b, t0done)
	TAIL(BX, DI, R14, t1w, t1b, t1done)
	TAIL(CX, R8, R15, t2w, t2b, t2done)
	NOTL AX
	NOTL BX
	NOTL CX
	MOVL AX, 0(R11)
	MOVL BX, 4(R11)
	MOVL CX, 8(R11)
	RET
