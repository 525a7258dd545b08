package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestIndexScores checks the indexer scoring against its float64 definition
// for head counts not a multiple of 4, key counts not a multiple of 3, d not
// a multiple of 8, negative head weights and all-negative dot products, and
// that 1, 2 and 3 threads give identical bits.
func TestIndexScores(t *testing.T) {
	pools := map[int]*Pool{1: nil, 2: NewPool(2), 3: NewPool(3)}
	paths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, c := range []struct{ heads, d, n int }{
			{1, 8, 1}, {4, 16, 2}, {5, 24, 7}, {64, 128, 100}, {7, 13, 10}, {3, 128, 0}, {8, 128, 3},
		} {
			t.Run(fmt.Sprintf("h%d_d%d_n%d", c.heads, c.d, c.n), func(t *testing.T) {
				q := make([]float32, c.heads*c.d)
				for i := range q {
					q[i] = float32(rng.NormFloat64())
				}
				w := make([]float32, c.heads)
				for i := range w {
					w[i] = float32(rng.NormFloat64())
				}
				keys := make([][]float32, c.n)
				for k := range keys {
					keys[k] = make([]float32, c.d+1) // longer than d: only d are read
					for i := range keys[k] {
						keys[k][i] = float32(rng.NormFloat64())
					}
					if k%5 == 4 { // every dot product negative or zero
						for i := range keys[k] {
							keys[k][i] = 0
						}
					}
				}
				want := make([]float32, c.n)
				IndexScoresRef(want, q, c.heads, c.d, w, keys)
				var first []float32
				for _, th := range []int{1, 2, 3} {
					got := make([]float32, c.n)
					IndexScores(pools[th], got, q, c.heads, c.d, w, keys)
					for k := range got {
						// Bound: float32 rounding of Σ_h |w_h|·Σ_c |q·k|.
						var mag float64
						for h := 0; h < c.heads; h++ {
							var s float64
							for i := 0; i < c.d; i++ {
								s += math.Abs(float64(q[h*c.d+i]) * float64(keys[k][i]))
							}
							mag += math.Abs(float64(w[h])) * s
						}
						if d := math.Abs(float64(got[k] - want[k])); d > 1e-5*mag+1e-30 {
							t.Fatalf("threads %d key %d: got %v want %v", th, k, got[k], want[k])
						}
						if keys[k][0] == 0 && keys[k][1] == 0 && got[k] != 0 {
							t.Fatalf("zero key %d scored %v", k, got[k])
						}
					}
					if first == nil {
						first = got
						continue
					}
					for k := range got {
						if math.Float32bits(got[k]) != math.Float32bits(first[k]) {
							t.Fatalf("threads %d key %d: %v, 1 thread %v", th, k, got[k], first[k])
						}
					}
				}
			})
		}
	})
}

// TestIndexScoresNegative checks ReLU: a query anti-parallel to every key
// scores 0, one parallel scores Σ w·|k|².
func TestIndexScoresNegative(t *testing.T) {
	paths(t, func(t *testing.T) {
		d := 16
		key := make([]float32, d)
		for i := range key {
			key[i] = 1
		}
		q := make([]float32, 2*d)
		for i := 0; i < d; i++ {
			q[i], q[d+i] = -1, 0.5
		}
		got := make([]float32, 4)
		IndexScores(NewPool(2), got, q, 2, d, []float32{3, 2}, [][]float32{key, key, key, key})
		for k, v := range got {
			if v != 2*0.5*16 {
				t.Fatalf("key %d: %v, want 16", k, v)
			}
		}
	})
}
