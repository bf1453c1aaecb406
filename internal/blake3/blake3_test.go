package blake3

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"

	ref "github.com/zeebo/blake3"
)

var _ hash.Hash = (*Hasher)(nil)

// input returns n bytes in the pattern of the official test vectors.
func input(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func randomInput(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// A splitter cuts an input into the pieces that are written one by one.
type splitter struct {
	name  string
	split func(rng *rand.Rand, n int) []int
}

func fixed(sizes ...int) func(*rand.Rand, int) []int {
	return func(_ *rand.Rand, n int) []int {
		var out []int
		for i := 0; n > 0; i++ {
			s := min(sizes[i%len(sizes)], n)
			out = append(out, s)
			n -= s
		}
		return out
	}
}

var splitters = []splitter{
	{"whole", func(_ *rand.Rand, n int) []int { return []int{n} }},
	{"random", func(rng *rand.Rand, n int) []int {
		var out []int
		for n > 0 {
			// Mostly small pieces, sometimes large ones, so that both the
			// chunk state and the wide path see many different offsets.
			s := 1 + rng.IntN(2000)
			if rng.IntN(4) == 0 {
				s = 1 + rng.IntN(100000)
			}
			s = min(s, n)
			out = append(out, s)
			n -= s
		}
		return out
	}},
	{"bytes-first", func(rng *rand.Rand, n int) []int {
		var out []int
		for i := 0; i < 37 && n > 0; i++ {
			out = append(out, 1)
			n--
		}
		if n > 0 {
			out = append(out, n)
		}
		return out
	}},
	{"uneven", fixed(1000, 1500, 3000, 777)},
	{"16KiB", fixed(16<<10, 32<<10, 48<<10)},
	{"prefix32+256KiB", fixed(32, 256<<10)},
}

func writeSplit(h *Hasher, p []byte, sizes []int) {
	for _, s := range sizes {
		h.Write(p[:s])
		p = p[s:]
	}
}

func checkLength(t *testing.T, rng *rand.Rand, p []byte) {
	t.Helper()
	want := ref.Sum256(p)
	if got := Sum256(p); got != want {
		t.Fatalf("Sum256, len %d: got %x want %x", len(p), got, want)
	}
	for _, sp := range splitters {
		h := New()
		writeSplit(h, p, sp.split(rng, len(p)))
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%s writes, len %d: got %x want %x", sp.name, len(p), got, want)
		}
	}
}

func testLengths() []int {
	var ns []int
	for n := 0; n <= 2100; n++ {
		ns = append(ns, n)
	}
	for k := 2; k <= 40; k++ {
		ns = append(ns, k*chunkLen-1, k*chunkLen, k*chunkLen+1)
	}
	for _, n := range []int{16384, 32768, 65536, 1 << 20} {
		ns = append(ns, n-1, n, n+1)
	}
	ns = append(ns, 17*chunkLen+32, 31*chunkLen+33)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 4; i++ {
		ns = append(ns, rng.IntN(8<<20))
	}
	return ns
}

func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range testLengths() {
		checkLength(t, rng, randomInput(rng, n))
	}
}

// TestPortablePath runs the whole hash without the kernel, as on machines
// without AVX-512.
func TestPortablePath(t *testing.T) {
	defer func(old bool) { useAVX512 = old }(useAVX512)
	useAVX512 = false
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 1024, 1025, 2049, 16*1024 + 1, 17*1024 + 32, 100000, 1<<20 + 1} {
		checkLength(t, rng, randomInput(rng, n))
	}
}

func TestSumKeepsState(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	p := randomInput(rng, 3<<20)
	for _, cut := range []int{0, 1, 32, 1024, 1056, 4096, 16384, 40000, 1 << 20} {
		h := New()
		h.Write(p[:cut])
		first := h.Sum(nil)
		if want := ref.Sum256(p[:cut]); !bytes.Equal(first, want[:]) {
			t.Fatalf("cut %d: first Sum %x want %x", cut, first, want)
		}
		if again := h.Sum([]byte("x")); !bytes.Equal(again[1:], first) || again[0] != 'x' {
			t.Fatalf("cut %d: Sum not repeatable or not appended", cut)
		}
		h.Write(p[cut : 2*cut+100])
		h.Write(p[2*cut+100:])
		if got, want := h.Sum(nil), ref.Sum256(p); !bytes.Equal(got, want[:]) {
			t.Fatalf("cut %d: Sum after more writes %x want %x", cut, got, want)
		}
	}
}

func TestReset(t *testing.T) {
	h := New()
	h.Write(input(50000))
	h.Reset()
	h.Write([]byte("abc"))
	if got, want := h.Sum(nil), ref.Sum256([]byte("abc")); !bytes.Equal(got, want[:]) {
		t.Fatalf("after Reset: %x want %x", got, want)
	}
	if h.Size() != Size || h.BlockSize() != BlockSize {
		t.Fatal("Size or BlockSize wrong")
	}
}

// The lengths of the official test vectors, whose input is byte i = i % 251.
var officialLengths = []int{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025,
	2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168, 7169,
	8192, 8193, 16384, 31744, 102400,
}

func TestOfficialVectors(t *testing.T) {
	for _, n := range officialLengths {
		p := input(n)
		want := ref.Sum256(p)
		if got := Sum256(p); got != want {
			t.Errorf("len %d: got %x want %x", n, got, want)
		}
	}
	known := []struct{ in, hex string }{
		{"", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"abc", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
	}
	for _, k := range known {
		got := Sum256([]byte(k.in))
		if hex.EncodeToString(got[:]) != k.hex {
			t.Errorf("%q: got %x want %s", k.in, got, k.hex)
		}
		if want := ref.Sum256([]byte(k.in)); got != want {
			t.Errorf("%q: got %x, reference %x", k.in, got, want)
		}
	}
}

func TestWriteDoesNotAllocate(t *testing.T) {
	p := input(1<<20 + 77)
	h := New()
	for _, size := range []int{1, 100, 1024, 1056, 16 << 10, 256 << 10, len(p)} {
		allocs := testing.AllocsPerRun(5, func() { h.Write(p[:size]) })
		if allocs != 0 {
			t.Errorf("Write of %d bytes: %v allocations", size, allocs)
		}
	}
	var sum [Size]byte
	if allocs := testing.AllocsPerRun(5, func() { h.Sum(sum[:0]) }); allocs != 0 {
		t.Errorf("Sum: %v allocations", allocs)
	}
	if allocs := testing.AllocsPerRun(5, func() { sum = Sum256(p) }); allocs != 0 {
		t.Errorf("Sum256: %v allocations", allocs)
	}
}

// FuzzSum256 repeats the fuzz input a fuzz-chosen number of times, so that
// short corpus entries (which the fuzzer mutates and minimizes quickly)
// still reach the multi-chunk and wide paths, and writes it in two pieces
// split at a fuzz-chosen point.
func FuzzSum256(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint32(0))
	f.Add([]byte("abc"), uint8(0), uint32(1))
	f.Add(input(64), uint8(16), uint32(1000))
	f.Add(input(1000), uint8(16), uint32(32))
	f.Add(input(1024), uint8(40), uint32(1024*17+5))
	f.Add(input(333), uint8(255), uint32(40000))
	f.Fuzz(func(t *testing.T, unit []byte, repeat uint8, cut uint32) {
		// Capping the size keeps executions, and the minimization of
		// interesting inputs, fast.
		n := 1 + int(repeat)
		if len(unit) > 0 {
			n = min(n, max(1, (256<<10)/len(unit)))
		}
		p := bytes.Repeat(unit, n)
		want := ref.Sum256(p)
		if got := Sum256(p); got != want {
			t.Fatalf("Sum256 of %d bytes: got %x want %x", len(p), got, want)
		}
		c := int(cut % uint32(len(p)+1))
		h := New()
		h.Write(p[:c])
		h.Write(p[c:])
		if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("%d bytes split at %d: got %x want %x", len(p), c, got, want)
		}
	})
}

func ExampleSum256() {
	fmt.Printf("%x\n", Sum256([]byte("abc")))
	// Output: 6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85
}
