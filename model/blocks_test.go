package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestRopeThetaMatchesSpec(t *testing.T) {
	// Spec §2.5 test values for the compressed-layer rope (base 160000, YaRN).
	r := NewRopeTable(64, 160000, &Yarn{Factor: 16, OrigSeqLen: 65536, BetaFast: 32, BetaSlow: 1})
	want := map[int]float64{0: 1, 1: 0.6876560, 2: 0.4728708, 3: 0.3251725, 15: 3.635539e-3, 16: 2.265625e-3, 17: 1.396801e-3, 31: 5.680529e-7}
	for i, w := range want {
		if math.Abs(r.Theta[i]-w)/w > 1e-6 {
			t.Errorf("compress θ'_%d = %.8g, want %.8g", i, r.Theta[i], w)
		}
	}
	m := NewRopeTable(64, 10000, nil)
	for i, w := range map[int]float64{1: 0.7498942, 31: 1.3335214e-4} {
		if math.Abs(m.Theta[i]-w)/w > 1e-6 {
			t.Errorf("main θ_%d = %.8g, want %.8g", i, m.Theta[i], w)
		}
	}
}

func TestRopeInverse(t *testing.T) {
	r := NewRopeTable(64, 10000, nil)
	x := make([]float32, 128)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	y := append([]float32(nil), x...)
	r.Apply(y, 1234, false)
	if y[0] != x[0] || y[63] != x[63] {
		t.Fatal("rope touched the leading (nope) channels")
	}
	if math.Abs(float64(y[64]-x[64])) < 1e-3 && math.Abs(float64(y[65]-x[65])) < 1e-3 {
		t.Fatal("rope did not rotate pair 0")
	}
	r.Apply(y, 1234, true)
	for i := range x {
		if math.Abs(float64(y[i]-x[i])) > 1e-4 {
			t.Fatalf("inverse rope: channel %d = %v, want %v", i, y[i], x[i])
		}
	}
}

func TestSinkhornMix(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		logits := make([]float32, 16)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 3)
		}
		c := SinkhornMix(logits, 4, 20, 1e-6)
		for k := 0; k < 4; k++ {
			var col, row float32
			for j := 0; j < 4; j++ {
				col += c[j*4+k]
				row += c[k*4+j]
				if c[j*4+k] <= 0 {
					t.Fatalf("entry (%d,%d) = %v not positive", j, k, c[j*4+k])
				}
			}
			if math.Abs(float64(col-1)) > 1e-5 {
				t.Errorf("column %d sums to %v", k, col)
			}
			if math.Abs(float64(row-1)) > 5e-2 { // rows converge more slowly; the last step normalises columns
				t.Errorf("row %d sums to %v", k, row)
			}
		}
	}
	// One iteration: a row softmax (+eps) and one column normalisation, by hand.
	logits := []float32{0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 1, 1, 0, 0, 0, 5}
	c := SinkhornMix(logits, 4, 1, 0)
	var want [16]float64
	for j := 0; j < 4; j++ {
		var s float64
		for k := 0; k < 4; k++ {
			s += math.Exp(float64(logits[j*4+k]))
		}
		for k := 0; k < 4; k++ {
			want[j*4+k] = math.Exp(float64(logits[j*4+k])) / s
		}
	}
	for k := 0; k < 4; k++ {
		var s float64
		for j := 0; j < 4; j++ {
			s += want[j*4+k]
		}
		for j := 0; j < 4; j++ {
			want[j*4+k] /= s
		}
	}
	for i := range want {
		if math.Abs(float64(c[i])-want[i]) > 1e-6 {
			t.Fatalf("entry %d = %v, want %v", i, c[i], want[i])
		}
	}
}

func TestExpandUsesSecondIndex(t *testing.T) {
	// X'_k = post_k·y + Σ_j comb[j][k]·X_j, with D = 1.
	X := []float32{1, 2, 3, 4}
	comb := make([]float32, 16)
	comb[0*4+1] = 1 // stream 0 flows into stream 1
	comb[3*4+0] = 2 // stream 3 flows into stream 0 twice
	Expand(X, []float32{10}, HCMix{Post: []float32{0.5, 0, 0, 1}, Comb: comb})
	want := []float32{0.5*10 + 2*4, 1, 0, 10}
	for i := range want {
		if X[i] != want[i] {
			t.Fatalf("X = %v, want %v", X, want)
		}
	}
}

func TestCompressorOverlapPooling(t *testing.T) {
	// CSA, ratio 2, width d = 1: entry w pools the A halves of window w−1 and
	// the B halves of window w with a softmax over the gates.
	c := &Compressor{Ratio: 2, Overlap: true, D: 1}
	st := c.NewState()
	a := [][]float32{{1, 10}, {2, 20}, {3, 30}, {4, 40}}
	z := [][]float32{{0.1, 0.5}, {0.2, -0.5}, {0.3, 1.0}, {0.4, 0.0}}
	var got []float32
	for p := range a {
		if e, ok := c.Push(st, a[p], z[p], p); ok {
			got = append(got, e[0])
		}
	}
	soft := func(vals, gates []float64) float64 {
		var s, acc float64
		for i, g := range gates {
			s += math.Exp(g)
			acc += math.Exp(g) * vals[i]
		}
		return acc / s
	}
	want := []float64{
		soft([]float64{10, 20}, []float64{0.5, -0.5}),                // w=0: B halves only
		soft([]float64{1, 2, 30, 40}, []float64{0.1, 0.2, 1.0, 0.0}), // w=1
	}
	if len(got) != 2 {
		t.Fatalf("emitted %d entries, want 2", len(got))
	}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5 {
			t.Errorf("entry %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestTopKIndices(t *testing.T) {
	inf := float32(math.Inf(-1))
	cases := []struct {
		s    []float32
		k    int
		want []int
	}{
		{[]float32{1, 5, 3, 5, 2}, 2, []int{1, 3}},
		{[]float32{1, 5, 3}, 5, []int{0, 1, 2}},
		{[]float32{inf, 2, inf, 1}, 3, []int{1, 3}},
		{[]float32{0, 0, 0}, 2, []int{0, 1}},
	}
	for _, c := range cases {
		got := TopKIndices(c.s, c.k)
		if len(got) != len(c.want) {
			t.Errorf("TopK(%v,%d) = %v want %v", c.s, c.k, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("TopK(%v,%d) = %v want %v", c.s, c.k, got, c.want)
			}
		}
	}
}

func TestCandidateMask(t *testing.T) {
	// Blocks of 2 over 7 positions: [0,1] [2,3] [4,5] [6]. Keep the best 2
	// blocks, the newest (block 3) always among them.
	s := []float32{0, 9, 1, 1, 5, 0, -3}
	got := candidateMask(s, 2, 2)
	want := []bool{true, true, false, false, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mask = %v, want %v", got, want)
		}
	}
}
