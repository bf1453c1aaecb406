//go:build ignore

// gen writes the AVX-512 kernel: go run gen.go > hash_amd64.s
//
// The kernel keeps one input per 32-bit lane of sixteen ZMM registers, so
// each vector instruction advances sixteen compressions. Message blocks
// arrive one per lane and must be transposed into one vector per message
// word (and the results back). The generator simulates every shuffle it
// emits on symbolic lane contents and derives the store addresses from the
// simulation, so a wrong shuffle immediate or register choice stops
// generation instead of producing a subtly wrong kernel; the mapping to
// Go's reversed operand order is checked by the tests, which compare the
// kernel with the portable code.
package main

import (
	"bufio"
	"fmt"
	"os"
)

var out = bufio.NewWriter(os.Stdout)

func emit(format string, args ...any) {
	fmt.Fprintf(out, "\t"+format+"\n", args...)
}

func label(name string) { fmt.Fprintf(out, "%s:\n", name) }

func comment(text string) { fmt.Fprintf(out, "\n\t// %s\n", text) }

// vec is the symbolic content of a ZMM register: the source of each of its
// sixteen dwords.
type vec [16]int

var regs [32]vec

// free lists the ZMM registers that hold no live value during a transpose.
var free []int

func alloc() int {
	r := free[len(free)-1]
	free = free[:len(free)-1]
	return r
}

func release(rs ...int) { free = append(free, rs...) }

// unpack emits VPUNPCK{L,H}{DQ,QDQ}. Intel's first source supplies the
// even elements; Go's operand order is reversed, so it is written second.
func unpack(high, qword bool, dst, a, b int) {
	var v vec
	for k := 0; k < 4; k++ {
		base := 4 * k
		if high {
			base += 2
		}
		x, y := regs[a], regs[b]
		if qword {
			v[4*k], v[4*k+1], v[4*k+2], v[4*k+3] = x[base], x[base+1], y[base], y[base+1]
		} else {
			v[4*k], v[4*k+1], v[4*k+2], v[4*k+3] = x[base], y[base], x[base+1], y[base+1]
		}
	}
	op := map[[2]bool]string{
		{false, false}: "VPUNPCKLDQ", {true, false}: "VPUNPCKHDQ",
		{false, true}: "VPUNPCKLQDQ", {true, true}: "VPUNPCKHQDQ",
	}[[2]bool{high, qword}]
	emit("%s Z%d, Z%d, Z%d", op, b, a, dst)
	regs[dst] = v
}

// unpackPair writes both the low and the high interleave of a and b into
// fresh registers and frees a and b.
func unpackPair(qword bool, a, b int) (lo, hi int) {
	lo, hi = alloc(), alloc()
	unpack(false, qword, lo, a, b)
	unpack(true, qword, hi, a, b)
	release(a, b)
	return lo, hi
}

// shuf128 emits VSHUFI32X4: the two low 128-bit lanes come from a, the two
// high ones from b, each chosen by two bits of imm.
func shuf128(imm, dst, a, b int) {
	var v vec
	src := [4]vec{regs[a], regs[a], regs[b], regs[b]}
	for l := 0; l < 4; l++ {
		s := imm >> (2 * l) & 3
		copy(v[4*l:4*l+4], src[l][4*s:4*s+4])
	}
	emit("VSHUFI32X4 $0x%02x, Z%d, Z%d, Z%d", imm, b, a, dst)
	regs[dst] = v
}

// shufPair selects the even (0x88) and odd (0xdd) 128-bit lanes of a and b.
func shufPair(a, b int) (even, odd int) {
	even, odd = alloc(), alloc()
	shuf128(0x88, even, a, b)
	shuf128(0xdd, odd, a, b)
	release(a, b)
	return even, odd
}

// Register plan. Z0-Z15: the sixteen state words (and, before the state
// is set up, the sixteen loaded blocks); Z16-Z23: chaining values;
// Z24/Z25: low/high counter words; Z26-Z31: transpose scratch.
const (
	zCV     = 16
	zCtrLo  = 24
	zCtrHi  = 25
	msgArea = "R11" // 64-byte aligned copy of the transposed message
)

// transposeMessage turns the block of lane i in Zi into vectors of message
// words, stored so that word j of all lanes sits at 64*j(R11).
func transposeMessage() {
	free = []int{31, 30, 29, 28, 27, 26}
	var rows [16]int
	for i := range rows {
		rows[i] = i
		for w := range regs[i] {
			regs[i][w] = 16*i + w
		}
	}
	// Interleave dwords of lane pairs, then qwords of pair pairs: each
	// 128-bit lane k of x[g][w] then holds word 4k+w of lanes 4g..4g+3.
	var x [4][4]int
	for gr := 0; gr < 4; gr++ {
		lo0, hi0 := unpackPair(false, rows[4*gr], rows[4*gr+1])
		lo1, hi1 := unpackPair(false, rows[4*gr+2], rows[4*gr+3])
		x[gr][0], x[gr][1] = unpackPair(true, lo0, lo1)
		x[gr][2], x[gr][3] = unpackPair(true, hi0, hi1)
	}
	// A 4x4 transpose of 128-bit lanes, done in two rounds of lane
	// selection, gathers the four lane groups of each word.
	for w := 0; w < 4; w++ {
		p0, q0 := shufPair(x[0][w], x[1][w])
		p1, q1 := shufPair(x[2][w], x[3][w])
		a, b := shufPair(p0, p1)
		c, d := shufPair(q0, q1)
		for _, r := range []int{a, b, c, d} {
			j := regs[r][0] % 16
			for lane, src := range regs[r] {
				if src != 16*lane+j {
					panic(fmt.Sprintf("transpose: Z%d lane %d holds %d, want %d", r, lane, src, 16*lane+j))
				}
			}
			emit("VMOVDQU32 Z%d, %d(%s)", r, 64*j, msgArea)
		}
		release(a, b, c, d)
	}
}

// storeCVs transposes the chaining values (word j of every lane in
// Z16+j) into sixteen consecutive 32-byte values at (DI).
func storeCVs() {
	free = []int{15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}
	for j := 0; j < 8; j++ {
		for lane := range regs[zCV+j] {
			regs[zCV+j][lane] = 16*lane + j
		}
	}
	var ys []int
	for g := 0; g < 2; g++ {
		c := zCV + 4*g
		lo0, hi0 := unpackPair(false, c, c+1)
		lo1, hi1 := unpackPair(false, c+2, c+3)
		a, b := unpackPair(true, lo0, lo1)
		d, e := unpackPair(true, hi0, hi1)
		ys = append(ys, a, b, d, e)
	}
	// Each 128-bit lane now holds four consecutive words of one input's
	// chaining value and is stored straight to its place.
	for _, r := range ys {
		for k := 0; k < 4; k++ {
			first := regs[r][4*k]
			for i := 1; i < 4; i++ {
				if regs[r][4*k+i] != first+i {
					panic("storeCVs: 128-bit lane is not contiguous")
				}
			}
			lane, word := first/16, first%16
			emit("VEXTRACTI32X4 $%d, Z%d, %d(DI)", k, r, 32*lane+4*word)
		}
	}
}

// msgPermutation is the permutation the specification applies to the
// message words between rounds.
var msgPermutation = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}

// quarterRounds emits four G functions interleaved step by step, so that
// each step is four independent instructions. x and y are the indices of
// the message words each G adds.
func quarterRounds(gs [4][4]int, x, y [4]int) {
	// One half of G over the state words a, b, c, d (g[0..3]): a += m;
	// a += b; d ^= a; d >>>= rd; c += d; b ^= c; b >>>= rb.
	type step struct {
		op       string
		src, dst int // indices into g; src -1 rotates by rd, -2 by rb
	}
	steps := []step{{"VPADDD", 1, 0}, {"VPXORD", 0, 3}, {"VPRORD", -1, 3}, {"VPADDD", 3, 2}, {"VPXORD", 2, 1}, {"VPRORD", -2, 1}}
	half := func(m [4]int, rd, rb int) {
		for i, g := range gs {
			emit("VPADDD %d(%s), Z%d, Z%d", 64*m[i], msgArea, g[0], g[0])
		}
		for _, st := range steps {
			for _, g := range gs {
				switch st.src {
				case -1:
					emit("%s $%d, Z%d, Z%d", st.op, rd, g[st.dst], g[st.dst])
				case -2:
					emit("%s $%d, Z%d, Z%d", st.op, rb, g[st.dst], g[st.dst])
				default:
					emit("%s Z%d, Z%d, Z%d", st.op, g[st.src], g[st.dst], g[st.dst])
				}
			}
		}
	}
	half(x, 16, 12)
	half(y, 8, 7)
}

func rounds() {
	columns := [4][4]int{{0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}
	diagonals := [4][4]int{{0, 5, 10, 15}, {1, 6, 11, 12}, {2, 7, 8, 13}, {3, 4, 9, 14}}
	// sched[i] is the original index of the word in position i of the
	// permuted message; permuting indices instead of data costs nothing.
	var sched [16]int
	for i := range sched {
		sched[i] = i
	}
	for r := 0; r < 7; r++ {
		comment(fmt.Sprintf("round %d", r))
		var x, y [4]int
		for i := 0; i < 4; i++ {
			x[i], y[i] = sched[2*i], sched[2*i+1]
		}
		quarterRounds(columns, x, y)
		for i := 0; i < 4; i++ {
			x[i], y[i] = sched[8+2*i], sched[8+2*i+1]
		}
		quarterRounds(diagonals, x, y)
		var next [16]int
		for i, p := range msgPermutation {
			next[i] = sched[p]
		}
		sched = next
	}
}

func main() {
	defer out.Flush()
	fmt.Fprintln(out, "// Code generated by go run gen.go. DO NOT EDIT.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "#include \"textflag.h\"")
	fmt.Fprintln(out)
	ivWords := []uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
	for i, w := range ivWords {
		fmt.Fprintf(out, "DATA iv<>+%d(SB)/4, $0x%08x\n", 4*i, w)
	}
	fmt.Fprintln(out, "GLOBL iv<>(SB), RODATA|NOPTR, $32")
	fmt.Fprintln(out)
	for i := 0; i < 16; i++ {
		fmt.Fprintf(out, "DATA laneIndex<>+%d(SB)/4, $%d\n", 4*i, i)
	}
	fmt.Fprintln(out, "GLOBL laneIndex<>(SB), RODATA|NOPTR, $64")
	fmt.Fprintln(out)

	// The frame holds the 1 KiB transposed message plus slack to align it
	// to 64 bytes, so that no memory operand of the rounds splits a line.
	fmt.Fprintln(out, "// func hashManyAVX512(in *[16][]byte, blocks int, counter uint64, inc uint32, flags, start, end uint32, out *[512]byte)")
	fmt.Fprintln(out, "TEXT ·hashManyAVX512(SB), 0, $1088-48")
	emit("MOVQ in+0(FP), SI")
	emit("MOVQ blocks+8(FP), CX")
	emit("MOVL flags+28(FP), BX")
	emit("MOVL start+32(FP), R12")
	emit("MOVL end+36(FP), R13")
	emit("MOVQ out+40(FP), DI")
	emit("LEAQ 63(SP), %s", msgArea)
	emit("ANDQ $-64, %s", msgArea)
	emit("TESTQ CX, CX")
	emit("JZ done")

	// Lane i counts chunk counter+i*inc; a carry out of the low word is
	// propagated to the high word lane by lane.
	comment("Per-lane counters: counter + lane*inc, carrying into the high word.")
	emit("MOVQ counter+16(FP), AX")
	emit("VPBROADCASTD AX, Z%d", zCtrLo)
	emit("SHRQ $32, AX")
	emit("VPBROADCASTD AX, Z%d", zCtrHi)
	emit("MOVL inc+24(FP), AX")
	emit("VPBROADCASTD AX, Z26")
	emit("VPMULLD laneIndex<>(SB), Z26, Z26")
	emit("VPADDD Z26, Z%d, Z27", zCtrLo)
	emit("VPCMPUD $1, Z%d, Z27, K1", zCtrLo)
	emit("MOVL $1, AX")
	emit("VPBROADCASTD AX, Z28")
	emit("VPADDD Z28, Z%d, K1, Z%d", zCtrHi, zCtrHi)
	emit("VMOVDQA32 Z27, Z%d", zCtrLo)
	for j := 0; j < 8; j++ {
		emit("VPBROADCASTD iv<>+%d(SB), Z%d", 4*j, zCV+j)
	}
	emit("XORQ R8, R8") // byte offset of the current block in each input

	comment("One block of every lane per iteration; R8 is the block's byte offset.")
	label("loop")
	for i := 0; i < 16; i++ {
		emit("MOVQ %d(SI), R9", 24*i)
		emit("VMOVDQU32 (R9)(R8*1), Z%d", i)
	}
	// Sixteen interleaved streams 1 KiB apart defeat the hardware
	// prefetchers when the data comes from DRAM (the kernel then ran at
	// 3-5 GB/s instead of 7.5, worst for inputs not 64-byte aligned).
	// Callers hash consecutive groups of one buffer, so while hashing a
	// group the kernel prefetches the 16 KiB that follow its last lane,
	// 1 KiB per block: R9 still points at lane 15, and R8*16 is the block
	// index times 1 KiB. A wrong guess costs only useless prefetches,
	// which never fault.
	comment("Prefetch the next 16 KiB after lane 15, 1 KiB per block (see gen.go).")
	emit("LEAQ 1024(R9)(R8*8), R10")
	emit("LEAQ (R10)(R8*8), R10")
	for k := 0; k < 16; k++ {
		emit("PREFETCHT0 %d(R10)", 64*k)
	}
	comment("Transpose the blocks into one vector per message word, kept on the stack.")
	transposeMessage()

	comment("Flags: start on the first block, end on the last.")
	emit("MOVL BX, DX")
	emit("MOVL BX, R10")
	emit("ORL R12, R10")
	emit("TESTQ R8, R8")
	emit("CMOVLEQ R10, DX")
	emit("MOVL DX, R10")
	emit("ORL R13, R10")
	emit("CMPQ CX, $1")
	emit("CMOVLEQ R10, DX")

	for j := 0; j < 8; j++ {
		emit("VMOVDQA32 Z%d, Z%d", zCV+j, j)
	}
	for j := 0; j < 4; j++ {
		emit("VPBROADCASTD iv<>+%d(SB), Z%d", 4*j, 8+j)
	}
	emit("VMOVDQA32 Z%d, Z12", zCtrLo)
	emit("VMOVDQA32 Z%d, Z13", zCtrHi)
	emit("MOVL $%d, AX", 64)
	emit("VPBROADCASTD AX, Z14")
	emit("VPBROADCASTD DX, Z15")

	rounds()

	comment("The new chaining value is the xor of the two state halves.")
	for j := 0; j < 8; j++ {
		emit("VPXORD Z%d, Z%d, Z%d", 8+j, j, zCV+j)
	}
	emit("ADDQ $64, R8")
	emit("DECQ CX")
	emit("JNZ loop")

	comment("Transpose the chaining values back, one 32-byte value per lane.")
	storeCVs()
	label("done")
	emit("VZEROUPPER")
	emit("RET")
}
