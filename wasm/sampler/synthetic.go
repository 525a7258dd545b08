package sampler

// PeakedLogits returns n synthetic logits shaped like a language model's
// on a confident step, for benchmarks and tests: a long tail far below a
// few high tokens. Every id first gets a tail value −8 + 5.2·(u1+u2+u3+u4−2)
// (u uniform in [0, 1): roughly normal, mean −8, standard deviation 3);
// then 512 ids drawn at random get a value uniform in [2, 12), 15 more get
// one uniform in [14, 20), and one more gets 22, the maximum. The ids come
// from SplitMix64 seeded by seed and the arithmetic is exact or correctly
// rounded, so every target produces the same values.
//
// At temperature 0.8 the top token holds most of the mass and most of the
// tail lies more than 25.5 below the maximum, where the integer weight of a
// token is 0 (see DESIGN.md); uniform or normal random logits (the other
// benchmark case) have no such tokens.
func PeakedLogits(n int, seed uint64) []float32 {
	r := NewRand(seed)
	unif := func() float64 { return float64(r.Uint64()>>11) / (1 << 53) }
	x := make([]float32, n)
	for i := range x {
		v := unif() + unif() + unif() + unif() - 2
		x[i] = float32(-8 + float64(v*5.2))
	}
	if n == 0 {
		return x
	}
	pick := func() int { return int(r.Below(uint64(n))) }
	for range 512 {
		x[pick()] = float32(2 + float64(unif()*10))
	}
	for range 15 {
		x[pick()] = float32(14 + float64(unif()*6))
	}
	x[pick()] = 22
	return x
}
