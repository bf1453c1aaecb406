package main

import (
	"slices"
	"testing"
)

// Every round is a permutation, and over n rounds (n even) every side
// directly follows every other side exactly once.
func TestBalancedOrder(t *testing.T) {
	for n := 1; n <= 6; n++ {
		follows := map[[2]int]int{}
		for r := range n {
			o := balancedOrder(n, r)
			s := slices.Clone(o)
			slices.Sort(s)
			for i := range s {
				if s[i] != i {
					t.Fatalf("n=%d round %d: %v is not a permutation", n, r, o)
				}
			}
			for i := 1; i < n; i++ {
				follows[[2]int{o[i-1], o[i]}]++
			}
		}
		if n%2 == 1 {
			continue
		}
		for a := range n {
			for b := range n {
				if want := map[bool]int{true: 0, false: 1}[a == b]; follows[[2]int{a, b}] != want {
					t.Errorf("n=%d: %d followed by %d %d times, want %d", n, a, b, follows[[2]int{a, b}], want)
				}
			}
		}
	}
}
