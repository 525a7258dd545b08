package model

import (
	"encoding/binary"
	"math"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// HCSite holds the manifold-constrained hyper-connection parameters of one
// site (attention or FFN) of a layer: fn [(2+n)·n, n·D], base [(2+n)·n], scale [3].
type HCSite struct {
	Fn    *kernels.Matrix
	Base  []float32
	Scale []float32
	n     int
	iters int
	hcEps float32
	eps   float32 // rms_norm_eps, inside the mixing rsqrt
}

// HCMix is one token's coefficients at one site: how the n streams collapse
// into the sublayer input (Pre), how the sublayer output is spread back
// (Post), and how the streams mix among themselves (Comb[j*n+k]: from j to k).
type HCMix struct {
	Pre, Post, Comb []float32
}

func loadHCSite(w Weights, prefix string, cfg checkpoint.Config) (*HCSite, error) {
	n, D := cfg.HCMult, cfg.Dim
	rows := (2 + n) * n
	s := &HCSite{n: n, iters: cfg.HCIters, hcEps: cfg.HCEps, eps: cfg.NormEps}
	var err error
	if s.Fn, err = f32Matrix(w, prefix+"_fn", rows, n*D); err != nil {
		return nil, err
	}
	if s.Base, err = w.Floats(prefix+"_base", rows); err != nil {
		return nil, err
	}
	if s.Scale, err = w.Floats(prefix+"_scale", 3); err != nil {
		return nil, err
	}
	return s, nil
}

// Mixes computes the coefficients of every token of X ([T, n·D]):
// μ = (fn·x)/rms(x); pre = σ(μ_pre·s0 + b) + ε; post = 2σ(μ_post·s1 + b);
// comb = Sinkhorn(μ_comb·s2 + b).
func (s *HCSite) Mixes(be kernels.Backend, X []float32, T int) []HCMix {
	n := s.n
	nd := s.Fn.Cols
	mu := make([]float32, T*s.Fn.Rows)
	be.MatMul(mu, s.Fn, X, T)
	out := make([]HCMix, T)
	for t := 0; t < T; t++ {
		r := invRMS(X[t*nd:(t+1)*nd], s.eps)
		m := mu[t*s.Fn.Rows : (t+1)*s.Fn.Rows]
		mix := HCMix{Pre: make([]float32, n), Post: make([]float32, n)}
		for j := 0; j < n; j++ {
			mix.Pre[j] = sigmoid(m[j]*r*s.Scale[0]+s.Base[j]) + s.hcEps
			mix.Post[j] = 2 * sigmoid(m[n+j]*r*s.Scale[1]+s.Base[n+j])
		}
		logits := make([]float32, n*n)
		for i := range logits {
			logits[i] = m[2*n+i]*r*s.Scale[2] + s.Base[2*n+i]
		}
		mix.Comb = SinkhornMix(logits, n, s.iters, s.hcEps)
		out[t] = mix
	}
	return out
}

// SinkhornMix turns n×n logits into a (nearly) doubly stochastic matrix the
// way the reference kernel does: a row softmax plus eps, a column
// normalisation, then iters−1 rounds of row then column normalisation, each
// dividing by (sum + eps). The last step normalises columns.
func SinkhornMix(logits []float32, n, iters int, eps float32) []float32 {
	c := make([]float32, n*n)
	for j := 0; j < n; j++ {
		row := logits[j*n : (j+1)*n]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float32
		for k, v := range row {
			c[j*n+k] = expf(v - mx)
			sum += c[j*n+k]
		}
		for k := range row {
			c[j*n+k] = c[j*n+k]/sum + eps
		}
	}
	normCols := func() {
		for k := 0; k < n; k++ {
			var sum float32
			for j := 0; j < n; j++ {
				sum += c[j*n+k]
			}
			for j := 0; j < n; j++ {
				c[j*n+k] /= sum + eps
			}
		}
	}
	normCols()
	for it := 1; it < iters; it++ {
		for j := 0; j < n; j++ {
			var sum float32
			for k := 0; k < n; k++ {
				sum += c[j*n+k]
			}
			for k := 0; k < n; k++ {
				c[j*n+k] /= sum + eps
			}
		}
		normCols()
	}
	return c
}

// Collapse writes u = Σ_j pre_j·X_j, the sublayer input, for one token.
func Collapse(u, X, pre []float32) {
	D := len(u)
	clear(u)
	for j, p := range pre {
		kernels.Axpy(u, p, X[j*D:(j+1)*D])
	}
}

// Expand replaces one token's streams with X'_k = post_k·y + Σ_j comb[j][k]·X_j.
// The output stream is the second index of comb.
func Expand(X, y []float32, mix HCMix) {
	n := len(mix.Post)
	D := len(y)
	old := append([]float32(nil), X[:n*D]...)
	for k := 0; k < n; k++ {
		xk := X[k*D : (k+1)*D]
		for c := range xk {
			xk[c] = mix.Post[k] * y[c]
		}
		for j := 0; j < n; j++ {
			kernels.Axpy(xk, mix.Comb[j*n+k], old[j*D:(j+1)*D])
		}
	}
}

// HCHead is V4's final collapse of the streams before the output norm.
type HCHead struct {
	Fn    *kernels.Matrix // [n, n·D]
	Base  []float32
	Scale []float32
	hcEps float32
	eps   float32
}

func loadHCHead(w Weights, prefix string, cfg checkpoint.Config) (*HCHead, error) {
	n, D := cfg.HCMult, cfg.Dim
	h := &HCHead{hcEps: cfg.HCEps, eps: cfg.NormEps}
	var err error
	if h.Fn, err = f32Matrix(w, prefix+"hc_head_fn", n, n*D); err != nil {
		return nil, err
	}
	if h.Base, err = w.Floats(prefix+"hc_head_base", n); err != nil {
		return nil, err
	}
	if h.Scale, err = w.Floats(prefix+"hc_head_scale", 1); err != nil {
		return nil, err
	}
	return h, nil
}

// Pre returns the collapse weights σ(μ·scale + base) + ε of each of T tokens.
func (h *HCHead) Pre(be kernels.Backend, X []float32, T int) [][]float32 {
	n := h.Fn.Rows
	mu := make([]float32, T*n)
	be.MatMul(mu, h.Fn, X, T)
	out := make([][]float32, T)
	for t := range out {
		r := invRMS(X[t*h.Fn.Cols:(t+1)*h.Fn.Cols], h.eps)
		out[t] = make([]float32, n)
		for j := range out[t] {
			out[t][j] = sigmoid(mu[t*n+j]*r*h.Scale[0]+h.Base[j]) + h.hcEps
		}
	}
	return out
}

// invRMS returns 1/sqrt(mean(x²)+eps), accumulated in float64.
func invRMS(x []float32, eps float32) float32 {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	return float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
}

// f32Matrix reads a float tensor stored under its own name (the hc_* tensors
// have no ".weight" suffix) as a float32 matrix.
func f32Matrix(w Weights, name string, rows, cols int) (*kernels.Matrix, error) {
	v, err := w.Floats(name, rows, cols)
	if err != nil {
		return nil, err
	}
	m := &kernels.Matrix{Format: kernels.F32, Rows: rows, Cols: cols, Data: make([]byte, 4*len(v))}
	for i, x := range v {
		binary.LittleEndian.PutUint32(m.Data[4*i:], math.Float32bits(x))
	}
	return m, nil
}
