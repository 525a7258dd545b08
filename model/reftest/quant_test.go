package reftest

import (
	"math"
	"testing"
)

// The expected values below are worked out by hand from the definitions in
// spec attention-and-formats.md §2.3; each comment shows the arithmetic.

func TestRoundE4M3(t *testing.T) {
	cases := []struct{ in, want float64 }{
		{1, 1},
		{1.0625, 1},               // halfway 1 (mantissa 0) / 1.125 (mantissa 1): even → 1
		{1.1875, 1.25},            // halfway 1.125 (m 1) / 1.25 (m 2): even → 1.25
		{0.3, 0.3125},             // binade [0.25, 0.5), step 2^-5: 0.3/0.03125 = 9.6 → 10
		{-0.3, -0.3125},           // sign kept
		{250, 256},                // binade [128, 256), step 16: 15.625 → 16
		{448, 448},                // largest value
		{500, 448},                // saturates
		{0.0009765625, 0},         // 2^-10 = half the subnormal step 2^-9: even → 0
		{0.0029296875, 1.0 / 256}, // 3·2^-10: halfway 2^-9 (m 1) / 2^-8 (m 2): even → 2^-8
		{0.1, 0.1015625},          // binade [2^-4, 2^-3), step 2^-7: 12.8 → 13
	}
	for _, c := range cases {
		if got := RoundE4M3(c.in); got != c.want {
			t.Errorf("RoundE4M3(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestRoundE2M1(t *testing.T) {
	cases := []struct{ in, want float64 }{
		{0.25, 0}, {0.75, 1}, {1.25, 1}, {1.75, 2}, {2.5, 2}, {3.5, 4}, {5, 4}, // ties to even code
		{0.26, 0.5}, {0.15, 0}, {2.6, 3}, {5.5, 6}, {7, 6}, {-2.6, -3}, {-0.75, -1}, {-100, -6},
	}
	for _, c := range cases {
		if got := RoundE2M1(c.in); got != c.want {
			t.Errorf("RoundE2M1(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func eq(t *testing.T, name string, got, want []float64) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] && !(math.IsNaN(got[i]) && math.IsNaN(want[i])) {
			t.Errorf("%s = %v, want %v", name, got, want)
			return
		}
	}
}

func TestQ8(t *testing.T) {
	// amax 1000: 1000/448 = 2.23 → s = 2^2 = 4; x/s = 0.25, 0.5, 0.75, 250 →
	// e4m3 0.25, 0.5, 0.75, 256 → ×4.
	x := []float64{1, 2, 3, 1000}
	Q8(x, 4)
	eq(t, "Q8 one block", x, []float64{1, 2, 3, 1024})

	// Blocks of 2. Block 1: amax 448 → 448/448 = 1 exactly → s = 1;
	// 0.1 → 0.1015625. Block 2: amax 1 → 1/448 = 2^-8.81 → s = 2^-8;
	// 1/s = 256 and 0.7/s = 179.2 → binade [128, 256) step 16 → 176 → 0.6875.
	x = []float64{448, 0.1, 1, 0.7}
	Q8(x, 2)
	eq(t, "Q8 two blocks", x, []float64{448, 0.1015625, 1, 0.6875})

	// All zero: amax floored at 1e-4, stays zero. Short last block (3 of 2).
	x = []float64{0, 0, -3}
	Q8(x, 2)
	eq(t, "Q8 zeros and short block", x, []float64{0, 0, -3})
}

func TestQ4E8(t *testing.T) {
	// amax 6.5: 6.5/6 = 1.083 → s = 2; x/s = 0.15, −0.5, 1.45, 3.25 →
	// e2m1 0, −0.5, 1.5, 3 → ×2.
	x := []float64{0.3, -1, 2.9, 6.5}
	Q4E8(x, 4)
	eq(t, "Q4E8", x, []float64{0, -1, 3, 6})

	// amax 3: 3/6 = 0.5 exactly → s = 0.5; x/s = 6, 1.5, 0.5, −5 (tie 4/6 →
	// 4) → ×0.5. Second block amax 0.1 → 0.1/6 = 2^-5.9 → s = 2^-5;
	// 0.1·32 = 3.2 → 3 → 0.09375; 0.01·32 = 0.32 → 0.5 → 0.015625.
	x = []float64{3, 0.75, 0.25, -2.5, 0.1, 0.01}
	Q4E8(x, 4)
	eq(t, "Q4E8 two blocks", x, []float64{3, 0.75, 0.25, -2, 0.09375, 0.015625})
}

func TestQ4E4(t *testing.T) {
	// amax 3: s = e4m3(0.5) = 0.5; x/s = 2, 1, −6, 0: exact.
	x := []float64{1, 0.5, -3, 0}
	Q4E4(x, 4)
	eq(t, "Q4E4 exact", x, []float64{1, 0.5, -3, 0})

	// amax 7: 7/6 = 1.1667 → e4m3 step 0.125 → 9.33 → 9 → s = 1.125;
	// 7/s = 6.22 → 6 → 6.75; 1/s = 0.889 → 1 → 1.125;
	// 0.3/s = 0.267 → 0.5 → 0.5625; −2/s = −1.78 → −2 → −2.25.
	x = []float64{7, 1, 0.3, -2}
	Q4E4(x, 4)
	eq(t, "Q4E4 scale not a power of two", x, []float64{6.75, 1.125, 0.5625, -2.25})
}

func TestHadamard(t *testing.T) {
	x := []float64{1, 0, 0, 0}
	Hadamard(x)
	eq(t, "Hadamard e0", x, []float64{0.5, 0.5, 0.5, 0.5})
	// Rows of H4/2: (1,1,1,1), (1,−1,1,−1), (1,1,−1,−1), (1,−1,−1,1).
	x = []float64{1, 2, 3, 4}
	Hadamard(x)
	eq(t, "Hadamard 1..4", x, []float64{5, -1, -2, 0})
}

func TestDecoders(t *testing.T) {
	// e4m3: 0x38 = 0.0111.000 → 2^(7−7) = 1; 0x7E = 0.1111.110 → 1.75·2^8 =
	// 448; 0x01 → 2^-9; 0xB4 = 1.0110.100 → −1.5·2^-1 = −0.75.
	for b, want := range map[byte]float64{0x38: 1, 0x7E: 448, 0x01: 1.0 / 512, 0xB4: -0.75, 0x00: 0} {
		if got := decodeE4M3(b); got != want {
			t.Errorf("decodeE4M3(%#x) = %v, want %v", b, got, want)
		}
	}
	if !math.IsNaN(decodeE4M3(0x7F)) {
		t.Errorf("decodeE4M3(0x7f) is not NaN")
	}
	if decodeE8M0(127) != 1 || decodeE8M0(120) != 1.0/128 || !math.IsNaN(decodeE8M0(255)) {
		t.Errorf("decodeE8M0 wrong")
	}
	if decodeE2M1(7) != 6 || decodeE2M1(13) != -3 || decodeE2M1(8) != 0 {
		t.Errorf("decodeE2M1 wrong")
	}
}

func TestTopKTiesTowardLowerIndex(t *testing.T) {
	got := topK([]float64{1, 3, 3, 0, 3}, 2, nil)
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("topK = %v, want [1 2]", got)
	}
	// Candidate mask: blocks of 2 over 5 scores; block maxima 2, 9, (5 forced
	// +inf); keep 2 blocks: block 2 (forced) and block 1.
	m := candidateMask([]float64{2, 0, 9, 1, 5}, 2, 2)
	want := []bool{false, false, true, true, true}
	for i := range want {
		if m[i] != want[i] {
			t.Fatalf("candidateMask = %v, want %v", m, want)
		}
	}
}
