// Package blake3 implements the unkeyed BLAKE3 hash with a 32-byte
// output. On amd64 machines with AVX-512F the bulk of the input is hashed
// sixteen chunks at a time by an assembly kernel; elsewhere a portable
// implementation is used.
package blake3

import "math/bits"

const (
	// Size is the length of a BLAKE3 digest in bytes.
	Size = 32
	// BlockSize is the length of a BLAKE3 message block in bytes.
	BlockSize = 64

	chunkLen = 1024
	// maxLanes is the width of the kernel: how many chunks (or parents)
	// are compressed side by side.
	maxLanes = 16
	// maxDepth bounds the CV stack: 2^54 chunks of 1 KiB cover 2^64 bytes.
	maxDepth = 54
)

// Hasher computes a BLAKE3 digest incrementally. It implements hash.Hash.
// The zero value is ready for use, as is the result of New.
type Hasher struct {
	// The chunk being filled is kept as raw bytes rather than compressed
	// block by block: once more input shows that it is complete and not
	// the root, it joins the following chunks as one lane of the kernel,
	// which keeps writes that do not end on chunk boundaries wide.
	buf     [chunkLen]byte
	bufLen  int
	counter uint64 // index of the chunk being filled = whole chunks before it

	// Chaining values of completed subtrees, left to right. Merging is
	// lazy: the last entries may still be merged with input not yet seen,
	// and the final pair may become the children of the root.
	stack [maxDepth][32]byte
	depth int
}

// New returns a Hasher for the unkeyed BLAKE3 hash.
func New() *Hasher {
	h := new(Hasher)
	h.Reset()
	return h
}

// Reset discards all input written so far.
func (h *Hasher) Reset() {
	h.bufLen = 0
	h.counter = 0
	h.depth = 0
}

// Size returns the digest length, Size.
func (h *Hasher) Size() int { return Size }

// BlockSize returns the BLAKE3 block length, BlockSize.
func (h *Hasher) BlockSize() int { return BlockSize }

// Sum256 returns the BLAKE3 digest of p.
func Sum256(p []byte) [Size]byte {
	var h Hasher
	h.Write(p)
	return h.digest()
}

// Sum appends the digest of the input written so far to b. It does not
// change the state, so more input may be written afterwards.
func (h *Hasher) Sum(b []byte) []byte {
	d := h.digest()
	return append(b, d[:]...)
}

// Write adds p to the input. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	in := leaves{body: p}
	if h.bufLen > 0 {
		k := copy(h.buf[h.bufLen:], p)
		h.bufLen += k
		if k == len(p) {
			// Without more input the buffered chunk may still be the root.
			return n, nil
		}
		in = leaves{head: h.buf[:], body: p[k:]}
	}
	// Everything but the last chunk's worth of input is known not to be
	// the root, so it goes through the wide path as whole subtrees.
	for in.len() > chunkLen {
		c := subtreeChunks(in.len(), h.counter)
		if c < maxLanes {
			h.writeSmallSubtrees(&in)
			continue
		}
		l, r := subtreeChildren(&in, int(c), h.counter)
		h.pushCV(&l, h.counter)
		h.pushCV(&r, h.counter+c/2)
		h.counter += c
		in.advance(int(c))
	}
	// The first subtree always takes the head, so only body is left; the
	// buffer is overwritten only now that the head has been hashed.
	h.bufLen = copy(h.buf[:], in.body)
	if h.bufLen > 0 {
		// The new chunk follows everything on the stack, so no entry can be
		// the root any more; merging now keeps the stack in the shape that
		// digest expects.
		h.mergeStack(h.counter)
	}
	return n, nil
}

// leaves is the input of the wide path: whole chunks, of which the first
// may be the chunk completed in the hasher's buffer and the rest follow in
// the written slice. The kernel takes a pointer per lane, so the two parts
// need not be contiguous.
type leaves struct {
	head []byte // nil or one complete chunk that precedes body
	body []byte
}

func (l *leaves) len() int { return len(l.head) + len(l.body) }

func (l *leaves) chunk(i int) []byte {
	if l.head != nil {
		if i == 0 {
			return l.head
		}
		i--
	}
	return l.body[i*chunkLen : (i+1)*chunkLen]
}

func (l *leaves) advance(chunks int) {
	if l.head != nil {
		l.head = nil
		chunks--
	}
	l.body = l.body[chunks*chunkLen:]
}

// subtreeChunks returns the number of chunks of the next subtree: the
// largest power of two that fits in n bytes and evenly divides the chunks
// already hashed, because a subtree must start at a multiple of its size.
func subtreeChunks(n int, counter uint64) uint64 {
	c := uint64(1) << (bits.Len64(uint64(n/chunkLen)) - 1)
	if counter != 0 {
		c = min(c, counter&-counter)
	}
	return c
}

// writeSmallSubtrees handles the subtrees of fewer than 16 chunks that
// occur where the chunk counter is not yet aligned or where the input runs
// out. Hashed one by one they would each cost a whole kernel call, so the
// leaves of consecutive small subtrees share one call.
func (h *Hasher) writeSmallSubtrees(in *leaves) {
	var sizes [maxLanes]uint64
	m, total := 0, uint64(0)
	for rest, ctr := in.len(), h.counter; rest > chunkLen; {
		c := subtreeChunks(rest, ctr)
		if c >= maxLanes || total+c > maxLanes {
			break
		}
		sizes[m] = c
		m++
		total += c
		ctr += c
		rest -= int(c) * chunkLen
	}
	var cvs [maxLanes * 32]byte
	hashChunks(in, 0, int(total), h.counter, &cvs)
	in.advance(int(total))
	off := 0
	for _, c := range sizes[:m] {
		if c == 1 {
			h.pushCV((*[32]byte)(cvs[32*off:]), h.counter)
		} else {
			l, r := reduceCVs(cvs[32*off : 32*(off+int(c))])
			h.pushCV(&l, h.counter)
			h.pushCV(&r, h.counter+c/2)
		}
		h.counter += c
		off += int(c)
	}
}

// subtreeChildren returns the chaining values of the two children of the
// root of the subtree formed by the first chunks (a power of two, at least
// 2) chunks of in, the first of which has index counter.
func subtreeChildren(in *leaves, chunks int, counter uint64) (l, r [32]byte) {
	var cvs [maxLanes * 32]byte
	n := subtreeCVs(in, 0, chunks, counter, &cvs)
	return reduceCVs(cvs[:32*n])
}

// subtreeCVs reduces chunks (a power of two) chunks of in, starting at
// chunk first, to at most 16 chaining values of the nodes of one tree
// level, writes them to out, and returns their count. Each level of the
// recursion holds only 32 CVs, so memory stays bounded however large the
// subtree, and every parent below the returned level is computed sixteen
// at a time.
func subtreeCVs(in *leaves, first, chunks int, counter uint64, out *[maxLanes * 32]byte) int {
	if chunks <= maxLanes {
		hashChunks(in, first, chunks, counter, out)
		return chunks
	}
	// Both halves have at least 16 chunks, so each yields exactly 16 CVs,
	// which pair up into 16 parents.
	var kids [2 * maxLanes * 32]byte
	half := chunks / 2
	subtreeCVs(in, first, half, counter, (*[maxLanes * 32]byte)(kids[:maxLanes*32]))
	subtreeCVs(in, first+half, half, counter+uint64(half), (*[maxLanes * 32]byte)(kids[maxLanes*32:]))
	hashParents(kids[:], out)
	return maxLanes
}

// reduceCVs merges a power-of-two number (2..16) of adjacent chaining
// values level by level until the two children of their common root remain.
func reduceCVs(cvs []byte) (l, r [32]byte) {
	var a, b [maxLanes * 32]byte
	n := copy(a[:], cvs) / 32
	for n > 2 {
		hashParents(a[:32*n], &b)
		n /= 2
		a, b = b, a
	}
	copy(l[:], a[:32])
	copy(r[:], a[32:64])
	return l, r
}

// hashChunks computes the chaining values of the n (1..16) chunks of in
// starting at chunk first, whose index is counter.
func hashChunks(in *leaves, first, n int, counter uint64, out *[maxLanes * 32]byte) {
	var lanes [maxLanes][]byte
	for i := 0; i < n; i++ {
		lanes[i] = in.chunk(first + i)
	}
	hashMany(&lanes, n, chunkLen/BlockSize, counter, true, 0, flagChunkStart, flagChunkEnd, out)
}

// hashParents computes the chaining values of the parents of the
// consecutive pairs of CVs in cvs (2..32 CVs).
func hashParents(cvs []byte, out *[maxLanes * 32]byte) {
	var in [maxLanes][]byte
	n := len(cvs) / 64
	for i := 0; i < n; i++ {
		in[i] = cvs[64*i : 64*(i+1)]
	}
	hashMany(&in, n, 1, 0, false, flagParent, 0, 0, out)
}

// pushCV appends the chaining value of the subtree starting at chunk
// index counter, first merging completed subtrees to its left.
func (h *Hasher) pushCV(cv *[32]byte, counter uint64) {
	h.mergeStack(counter)
	h.stack[h.depth] = *cv
	h.depth++
}

// mergeStack merges stack entries until one remains per set bit of total,
// the number of chunks left of everything still to come: then each entry
// is a complete power-of-two subtree that no future input can extend.
func (h *Hasher) mergeStack(total uint64) {
	for h.depth > bits.OnesCount64(total) {
		h.depth--
		h.stack[h.depth-1] = parentCV(&h.stack[h.depth-1], &h.stack[h.depth])
	}
}

// digest computes the root without modifying h. A non-empty buffer is
// the rightmost leaf; otherwise the last write ended on a whole subtree and
// the top two stack entries are the children of the rightmost node.
// Because Write merges the stack before it leaves data in the buffer,
// folding from the right yields exactly the tree's right edge.
func (h *Hasher) digest() [Size]byte {
	i := h.depth
	var n node
	if h.bufLen > 0 || i == 0 {
		n = h.chunkNode()
	} else {
		i -= 2
		n = parentNode(&h.stack[i], &h.stack[i+1])
	}
	for i > 0 {
		i--
		cv := n.chainingValue()
		n = parentNode(&h.stack[i], &cv)
	}
	return n.rootHash()
}

// chunkNode compresses all but the last block of the buffered chunk and
// describes that last block, zero-padded as the specification requires,
// which carries CHUNK_END (and, for a one-block chunk, CHUNK_START too).
func (h *Hasher) chunkNode() node {
	cv := iv
	p := h.buf[:h.bufLen]
	var flags uint32 = flagChunkStart
	for len(p) > BlockSize {
		m := blockWords(p)
		cv = compress(&cv, &m, h.counter, BlockSize, flags)
		flags = 0
		p = p[BlockSize:]
	}
	var last [BlockSize]byte
	copy(last[:], p)
	return node{cv: cv, m: blockWords(last[:]), counter: h.counter, blockLen: uint32(len(p)), flags: flags | flagChunkEnd}
}
