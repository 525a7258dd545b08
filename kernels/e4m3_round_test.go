package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRoundE4M3MatchesEncoding checks the bit-level rounding against the
// definition: decode(encode(x)), with encode the nearest e4m3 value.
func TestRoundE4M3MatchesEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(x float32) {
		got, want := RoundE4M3(x), E4M3ToF32(F32ToE4M3(x))
		if got != want && !(math.IsNaN(float64(got)) && math.IsNaN(float64(want))) {
			t.Fatalf("RoundE4M3(%g) = %g, want %g", x, got, want)
		}
	}
	for b := 0; b < 256; b++ { // every code and every midpoint between codes
		v := E4M3ToF32(uint8(b))
		if math.IsNaN(float64(v)) {
			continue
		}
		check(v)
		if b&0x7f < 0x7e {
			check((v + E4M3ToF32(uint8(b+1))) / 2)
		}
	}
	for i := 0; i < 200000; i++ {
		check(float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(30)-15))))
	}
	for _, x := range []float32{0, 448, 449, 470, 1e9, -1e9, 1e-9, float32(math.Inf(1))} {
		check(x)
	}
}
