package model

import (
	"math"

	"github.com/edgeseek/edgeseek/kernels"
)

// Compressor pools every Ratio consecutive tokens into one entry with a
// per-channel softmax gate: C[j] = Σ_s softmax_s(z_s[j])·a_s[j]. With Overlap
// (V4 CSA, ratio 4) each token carries two halves and entry w pools the A
// halves of window w−1 with the B halves of window w (2·Ratio slots).
type Compressor struct {
	Ratio   int
	Overlap bool
	D       int             // entry width
	Wkv     *kernels.Matrix // [c·D, dim]
	Wgate   *kernels.Matrix // [c·D, dim]; nil for V4.1 ratio 1 (no gate)
	Ape     []float32       // [Ratio, c·D] gate bias by position in the window (V4)
	Norm    []float32       // [D] applied to each pooled entry
}

func (c *Compressor) width() int {
	if c.Overlap {
		return 2 * c.D
	}
	return c.D
}

// CompressorState holds the tokens of the current, still open window (and,
// with overlap, the previous window's), so that chunked prefill and decode
// pool exactly the same slots as one-shot prefill.
type CompressorState struct {
	m, cd      int
	prevA      []float32 // [m, cd] previous window (overlap only)
	prevZ      []float32
	prevValid  bool
	curA, curZ []float32 // [m, cd]
}

// NewState returns an empty compressor state.
func (c *Compressor) NewState() *CompressorState {
	m, cd := c.Ratio, c.width()
	s := &CompressorState{m: m, cd: cd, curA: make([]float32, m*cd), curZ: make([]float32, m*cd)}
	if c.Overlap {
		s.prevA, s.prevZ = make([]float32, m*cd), make([]float32, m*cd)
	}
	return s
}

// Project computes a = Wkv·x and z = Wgate·x (+ ape is added per position in
// Push) for T tokens, in float32 with the bf16 weights widened, as the
// reference does.
func (c *Compressor) Project(be kernels.Backend, x []float32, T int) (a, z []float32) {
	a = make([]float32, T*c.Wkv.Rows)
	be.MatMul(a, c.Wkv, x, T)
	z = make([]float32, T*c.Wkv.Rows)
	if c.Wgate != nil {
		be.MatMul(z, c.Wgate, x, T)
	}
	return a, z
}

// Push adds the projections of the token at position p and, when p closes a
// window, returns the pooled entry (before its norm and rotary embedding).
func (c *Compressor) Push(s *CompressorState, a, z []float32, p int) ([]float32, bool) {
	m, cd := s.m, s.cd
	i := p % m
	copy(s.curA[i*cd:(i+1)*cd], a)
	zz := s.curZ[i*cd : (i+1)*cd]
	copy(zz, z)
	if c.Ape != nil {
		kernels.Axpy(zz, 1, c.Ape[i*cd:(i+1)*cd])
	}
	if (p+1)%m != 0 {
		return nil, false
	}
	out := make([]float32, c.D)
	d := c.D
	// Slots: previous window's A halves (overlap, if any), this window's B
	// halves (overlap) or whole vectors (no overlap).
	off := 0
	if c.Overlap {
		off = d
	}
	for j := 0; j < d; j++ {
		mx := float32(math.Inf(-1))
		if c.Overlap && s.prevValid {
			for t := 0; t < m; t++ {
				mx = max(mx, s.prevZ[t*cd+j])
			}
		}
		for t := 0; t < m; t++ {
			mx = max(mx, s.curZ[t*cd+off+j])
		}
		var sum, acc float32
		if c.Overlap && s.prevValid {
			for t := 0; t < m; t++ {
				e := expf(s.prevZ[t*cd+j] - mx)
				sum += e
				acc += e * s.prevA[t*cd+j]
			}
		}
		for t := 0; t < m; t++ {
			e := expf(s.curZ[t*cd+off+j] - mx)
			sum += e
			acc += e * s.curA[t*cd+off+j]
		}
		out[j] = acc / sum
	}
	if c.Overlap {
		copy(s.prevA, s.curA)
		copy(s.prevZ, s.curZ)
		s.prevValid = true
	}
	return out, true
}
