package model

import (
	"math"

	"github.com/edgeseek/edgeseek/kernels"
)

// Yarn is the YaRN frequency correction applied on compressed layers.
type Yarn struct {
	Factor     float64
	OrigSeqLen int
	BetaFast   float64
	BetaSlow   float64
	V41        bool // V4.1 guards a zero ramp width with max(·, 1e-3) instead of +0.001
}

// RopeTable gives the rotary angles θ_i (one per rotated pair) of one rope
// flavour: base 10000 on window-only layers, base 160000 with YaRN elsewhere.
type RopeTable struct {
	Dim   int       // rotated channels (the trailing RopeDim of a vector)
	Theta []float64 // per pair
}

// NewRopeTable computes θ_i = base^(−2i/dim), corrected by YaRN when y != nil:
// θ'_i = θ_i·(1−ramp_i) + θ_i/factor·ramp_i.
func NewRopeTable(dim int, base float64, y *Yarn) *RopeTable {
	t := &RopeTable{Dim: dim, Theta: make([]float64, dim/2)}
	for i := range t.Theta {
		// float32 exponent arithmetic, as both implementations build inv_freq in float32.
		t.Theta[i] = float64(float32(1 / math.Pow(base, float64(float32(2*i)/float32(dim)))))
	}
	if y == nil || y.Factor <= 1 {
		return t
	}
	corr := func(beta float64) float64 {
		return float64(dim) * math.Log(float64(y.OrigSeqLen)/(beta*2*math.Pi)) / (2 * math.Log(base))
	}
	low := math.Max(math.Floor(corr(y.BetaFast)), 0)
	high := math.Min(math.Ceil(corr(y.BetaSlow)), float64(dim-1))
	width := high - low
	if y.V41 {
		width = math.Max(width, 1e-3)
	} else if width == 0 {
		width = 0.001
	}
	for i := range t.Theta {
		ramp := math.Min(math.Max((float64(i)-low)/width, 0), 1)
		t.Theta[i] = float64(float32(t.Theta[i]*(1-ramp) + t.Theta[i]/y.Factor*ramp))
	}
	return t
}

// CosSin returns cos and sin of p·θ_i for every pair.
func (t *RopeTable) CosSin(p int) (cos, sin []float32) {
	cos = make([]float32, len(t.Theta))
	sin = make([]float32, len(t.Theta))
	for i, th := range t.Theta {
		a := float64(float32(float64(p) * th))
		cos[i] = float32(math.Cos(a))
		sin[i] = float32(math.Sin(a))
	}
	return
}

// Apply rotates the trailing Dim channels of x (interleaved pairs) to
// position p; inverse rotates back (used on attention outputs).
func (t *RopeTable) Apply(x []float32, p int, inverse bool) {
	t.At(p).Apply(x, inverse)
}

// Rotation is the rotary embedding of one position, computed once and
// applied to many vectors (every head of a token).
type Rotation struct {
	dim      int
	cos, sin []float32
}

// At returns the rotation of position p.
func (t *RopeTable) At(p int) Rotation {
	c, s := t.CosSin(p)
	return Rotation{dim: t.Dim, cos: c, sin: s}
}

// Apply rotates the trailing channels of x; inverse rotates back.
func (r Rotation) Apply(x []float32, inverse bool) {
	kernels.RotatePairs(x[len(x)-r.dim:], r.cos, r.sin, inverse)
}
