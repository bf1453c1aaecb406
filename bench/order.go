package main

// balancedOrder is the order in which n sides run in the given round: the
// rows of a Williams design, a Latin square in which, over n consecutive
// rounds (n even), every side runs right after every other side exactly
// once. Runs inherit state from the run before them (memory just freed,
// page cache, write-back in flight), so rotating one order, which keeps
// the same neighbours, would hand one side the same predecessor in every
// round.
func balancedOrder(n, round int) []int {
	// The first row is 0, n-1, 1, n-2, 2, ...; row r adds r to each.
	first := make([]int, n)
	for i, lo, hi := 0, 0, n-1; i < n; i++ {
		if i%2 == 0 {
			first[i], lo = lo, lo+1
		} else {
			first[i], hi = hi, hi-1
		}
	}
	r := ((round % n) + n) % n
	order := make([]int, n)
	for i, s := range first {
		order[i] = (s + r) % n
	}
	return order
}
