package sampler

// Rand is a SplitMix64 generator. It is defined here, not taken from
// math/rand, so that a seed yields the same sequence with every Go version
// and on every target (native, wazero, browser): it uses only 64-bit integer
// arithmetic, which is exact everywhere.
type Rand struct {
	state uint64
}

// NewRand returns a generator seeded with seed.
func NewRand(seed uint64) *Rand { return &Rand{state: seed} }

// Uint64 returns the next 64 pseudo-random bits.
func (r *Rand) Uint64() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Below returns a value uniform in [0, n) for n > 0 (0 when n == 0), using
// the high half of the 128-bit product so that no division is needed. The
// bias is at most n/2^64, far below anything a sampler can observe.
func (r *Rand) Below(n uint64) uint64 {
	hi, _ := mul64(r.Uint64(), n)
	return hi
}

// mul64 is bits.Mul64, written out so the package stays dependency-light
// and obviously identical on every target.
func mul64(x, y uint64) (hi, lo uint64) {
	const mask32 = 1<<32 - 1
	x0 := x & mask32
	x1 := x >> 32
	y0 := y & mask32
	y1 := y >> 32
	w0 := x0 * y0
	t := x1*y0 + w0>>32
	w1 := t & mask32
	w2 := t >> 32
	w1 += x0 * y1
	hi = x1*y1 + w2 + w1>>32
	lo = x * y
	return
}
