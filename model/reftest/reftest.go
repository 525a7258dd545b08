// Package reftest is an independent, plain-Go reference of the DeepSeek-V4 and
// V4.1 forward pass, written from the spec (shared/spec) and used only by
// tests to check package model. It computes every position of a sequence
// from scratch, layer by layer, in float64, with no caches and no
// incremental state: each compressed entry is pooled directly from the
// tokens it covers, each query derives its window, its visible entries and
// its indexer picks from the definitions. It is slow and meant for tiny
// checkpoints.
package reftest

import (
	"fmt"
	"math"

	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Sim selects which of the official reference's simulated low-precision
// steps (spec attention-and-formats.md §2.3) the reference applies.
type Sim struct {
	// ActQuant rounds activations to FP8 (Q8, blocks of the trunk's FP8
	// block: 128 in V4, 32 in V4.1) before every product with an FP8 or FP4
	// weight, except the grouped wo_a.
	ActQuant bool
	// KVQuant simulates the KV formats: V4 window and compressed KV get Q8
	// (block 64) on their non-rope channels; V4.1 window KV gets Q8 (block 32)
	// on all channels and compressed KV gets Q4E4 (block 16).
	KVQuant bool
	// IndexerQuant simulates the indexer formats: V4 queries and keys are
	// Hadamard-rotated, then Q4E8 (block 32); V4.1 ones get Q4E8 only.
	IndexerQuant bool
}

// Logits opens the checkpoint in dir and returns the logits of every position
// of tokens (one sequence starting at position 0), [T][vocab]. engram holds
// the V4.1 Engram table rows, engram[t][i] for the i-th Engram layer (row
// ids within that layer's table); it is ignored for V4.
func Logits(dir string, tokens []int, engram [][][]int64, sim Sim) ([][]float32, error) {
	return LogitsDebug(dir, tokens, engram, sim, nil)
}

// LogitsDebug is Logits that also fills dbg, when non-nil, with
// intermediate results, and rounds the near ties dbg.Flip names the other
// way. It is a tool for narrowing down a disagreement.
func LogitsDebug(dir string, tokens []int, engram [][][]int64, sim Sim, dbg *DebugInfo) ([][]float32, error) {
	ck, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	r := &ref{cfg: ck.Config, w: newStore(ck), sim: sim, toks: tokens, engram: engram,
		v41: ck.Config.Arch == checkpoint.ArchV41, dbg: dbg}
	if dbg != nil {
		seen := map[string]bool{}
		r.hook = func(kind string, elem int, v, margin float64) bool {
			// The same vector rounded before several products gives the
			// same key, so a flip applies to all of them, as it does in an
			// implementation that rounds that vector once.
			key := fmt.Sprintf("layer %d pos %d %s elem %d of %.17g", r.layer, r.pos, kind, elem, v)
			if !seen[key] {
				seen[key] = true
				dbg.NearTies = append(dbg.NearTies, NearTie{Key: key, Op: r.op, Pos: r.pos, Margin: margin})
			}
			return dbg.Flip[key]
		}
	}
	out, err := r.run()
	if err != nil {
		return nil, fmt.Errorf("reftest: %w", err)
	}
	return out, nil
}

// ref is one reference evaluation of a sequence.
type ref struct {
	cfg    *checkpoint.Config
	w      *store
	sim    Sim
	v41    bool
	toks   []int
	engram [][][]int64

	// V4.1 sharing across layers (spec §4 items 4, 7, 9).
	src      *kvSource // latest KV source's compressed cache
	picks    [][]int   // latest index source's picks, per position
	cand     [][]bool  // candidate mask of the candidate source, per position
	haveCand bool

	dbg        *DebugInfo
	hook       tieHook
	layer, pos int    // layer and position being computed, for dbg
	op         string // operation being rounded, for dbg
}

// kvSource is the compressed data a V4.1 KV-source layer publishes.
type kvSource struct {
	ratio   int
	entries [][]float64 // post-RoPE (and simulated) compressed KV
	keys    [][]float64 // indexer keys
}

// streams is the mHC residual state of every position: X[t][m] is stream m.
type streams [][][]float64

func (r *ref) run() ([][]float32, error) {
	c := r.cfg
	T, n := len(r.toks), c.HCMult
	if r.v41 && len(c.EngramLayers) > 0 && len(r.engram) != T {
		return nil, fmt.Errorf("V4.1 needs Engram rows for each of the %d tokens, got %d", T, len(r.engram))
	}
	emb, err := r.w.matrix("embed")
	if err != nil {
		return nil, err
	}
	X := make(streams, T)
	for t, tok := range r.toks {
		if tok < 0 || tok >= emb.rows {
			return nil, fmt.Errorf("token %d at %d outside the vocabulary", tok, t)
		}
		X[t] = make([][]float64, n)
		for m := range X[t] {
			X[t][m] = append([]float64(nil), emb.w[tok*emb.cols:(tok+1)*emb.cols]...)
		}
	}
	// V4.1 lagged pre chain: starts one-hot on stream 0 (spec §2.8).
	lag := make([][]float64, T)
	for t := range lag {
		lag[t] = make([]float64, n)
		lag[t][0] = 1
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		r.layer = l
		if r.v41 {
			if i := indexOf(c.EngramLayers, l); i >= 0 {
				if err := r.engramLayer(p+"engram.", i, X); err != nil {
					return nil, err
				}
			}
		}
		attn := func(u [][]float64) ([][]float64, error) { return r.attention(l, p+"attn.", u) }
		if lag, err = r.site(p+"hc_attn", p+"attn_norm.weight", X, lag, attn); err != nil {
			return nil, err
		}
		ffn := func(u [][]float64) ([][]float64, error) { return r.moe(l, p+"ffn.", u) }
		if lag, err = r.site(p+"hc_ffn", p+"ffn_norm.weight", X, lag, ffn); err != nil {
			return nil, err
		}
	}
	return r.head(X, lag)
}

// site runs one mHC site (spec mhc §2.3–§2.4, §2.8) on every position:
// coefficients from X, collapse u = Σ pre_m X_m (V4: this site's pre; V4.1:
// the previous site's, lag), y = F(norm(u)), and X_k ← post_k·y + Σ_j
// comb[j][k]·X_j. It returns this site's pre for the V4.1 chain.
func (r *ref) site(hc, normName string, X streams, lag [][]float64, F func([][]float64) ([][]float64, error)) ([][]float64, error) {
	c := r.cfg
	n := c.HCMult
	nw, err := r.w.vec(normName)
	if err != nil {
		return nil, err
	}
	pres, posts, combs := make([][]float64, len(X)), make([][]float64, len(X)), make([][][]float64, len(X))
	us := make([][]float64, len(X))
	for t := range X {
		if pres[t], posts[t], combs[t], err = r.hcCoeffs(hc, X[t]); err != nil {
			return nil, err
		}
		mix := pres[t]
		if r.v41 {
			mix = lag[t]
		}
		u := make([]float64, c.Dim)
		for m := 0; m < n; m++ {
			for i := range u {
				u[i] += mix[m] * X[t][m][i]
			}
		}
		us[t] = rmsnorm(u, nw, float64(c.NormEps))
	}
	ys, err := F(us)
	if err != nil {
		return nil, err
	}
	for t := range X {
		nx := make([][]float64, n)
		for k := 0; k < n; k++ {
			nx[k] = make([]float64, c.Dim)
			for i := range nx[k] {
				v := posts[t][k] * ys[t][i]
				for j := 0; j < n; j++ {
					v += combs[t][j][k] * X[t][j][i]
				}
				nx[k][i] = v
			}
		}
		X[t] = nx
	}
	return pres, nil
}

// hcMix is (fn · vec(x)) / sqrt(mean(vec(x)²) + norm_eps) for an mHC
// projection fn [rows, n·D] (stream-major flattening).
func (r *ref) hcMix(fnName string, x [][]float64) ([]float64, error) {
	fn, err := r.w.matrixNamed(fnName, fnName)
	if err != nil {
		return nil, err
	}
	var flat []float64
	for _, s := range x {
		flat = append(flat, s...)
	}
	ss := 0.0
	for _, v := range flat {
		ss += v * v
	}
	rs := 1 / math.Sqrt(ss/float64(len(flat))+float64(r.cfg.NormEps))
	mix := fn.mul(flat)
	for i := range mix {
		mix[i] *= rs
	}
	return mix, nil
}

// hcCoeffs computes one site's pre [n], post [n] and Sinkhorn-projected comb
// [n][n] (row j = source stream, column k = destination) from x.
func (r *ref) hcCoeffs(hc string, x [][]float64) (pre, post []float64, comb [][]float64, err error) {
	c := r.cfg
	n, eps := c.HCMult, float64(c.HCEps)
	mix, err := r.hcMix(hc+"_fn", x)
	if err != nil {
		return nil, nil, nil, err
	}
	base, err := r.w.vec(hc + "_base")
	if err != nil {
		return nil, nil, nil, err
	}
	sc, err := r.w.vec(hc + "_scale")
	if err != nil {
		return nil, nil, nil, err
	}
	pre, post = make([]float64, n), make([]float64, n)
	for m := 0; m < n; m++ {
		pre[m] = sigmoid(mix[m]*sc[0]+base[m]) + eps
		post[m] = 2 * sigmoid(mix[n+m]*sc[1]+base[n+m])
	}
	comb = make([][]float64, n)
	for j := range comb {
		comb[j] = make([]float64, n)
		mx := math.Inf(-1)
		for k := range comb[j] {
			comb[j][k] = mix[2*n+j*n+k]*sc[2] + base[2*n+j*n+k]
			mx = math.Max(mx, comb[j][k])
		}
		s := 0.0
		for k := range comb[j] {
			comb[j][k] = math.Exp(comb[j][k] - mx)
			s += comb[j][k]
		}
		for k := range comb[j] {
			comb[j][k] = comb[j][k]/s + eps
		}
	}
	colNorm := func() {
		for k := 0; k < n; k++ {
			s := 0.0
			for j := 0; j < n; j++ {
				s += comb[j][k]
			}
			for j := 0; j < n; j++ {
				comb[j][k] /= s + eps
			}
		}
	}
	colNorm()
	for it := 1; it < c.HCIters; it++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for k := 0; k < n; k++ {
				s += comb[j][k]
			}
			for k := 0; k < n; k++ {
				comb[j][k] /= s + eps
			}
		}
		colNorm()
	}
	return pre, post, comb, nil
}

// head collapses the streams (V4: hc_head; V4.1: the last FFN site's pre),
// applies the final norm and the LM head.
func (r *ref) head(X streams, lag [][]float64) ([][]float32, error) {
	c := r.cfg
	nw, err := r.w.vec("norm.weight")
	if err != nil {
		return nil, err
	}
	hd, err := r.w.matrix("head")
	if err != nil {
		return nil, err
	}
	var base, sc []float64
	if !r.v41 {
		if base, err = r.w.vec("hc_head_base"); err != nil {
			return nil, err
		}
		if sc, err = r.w.vec("hc_head_scale"); err != nil {
			return nil, err
		}
	}
	out := make([][]float32, len(X))
	for t := range X {
		pre := lag[t]
		if !r.v41 {
			mix, err := r.hcMix("hc_head_fn", X[t])
			if err != nil {
				return nil, err
			}
			pre = make([]float64, c.HCMult)
			for m := range pre {
				pre[m] = sigmoid(mix[m]*sc[0]+base[m]) + float64(c.HCEps)
			}
		}
		u := make([]float64, c.Dim)
		for m := range pre {
			for i := range u {
				u[i] += pre[m] * X[t][m][i]
			}
		}
		lg := hd.mul(rmsnorm(u, nw, float64(c.NormEps)))
		out[t] = make([]float32, len(lg))
		for i, v := range lg {
			out[t][i] = float32(v)
		}
	}
	return out, nil
}

// linear is W·x for `<base>.weight`, rounding x to FP8 first (ActQuant) when
// W is FP8 or FP4.
func (r *ref) linear(base string, x []float64) ([]float64, error) {
	m, err := r.w.matrix(base)
	if err != nil {
		return nil, err
	}
	if m.quant && r.sim.ActQuant {
		x = append([]float64(nil), x...)
		r.q8(base, x, r.cfg.FP8Block)
	}
	return m.mul(x), nil
}

// q8, q4e8 and q4e4 apply the simulated roundings, naming the operation for
// the debugging hook.
func (r *ref) q8(op string, x []float64, b int)   { r.op = op; q8(x, b, r.hook) }
func (r *ref) q4e8(op string, x []float64, b int) { r.op = op; q4e8(x, b, r.hook) }
func (r *ref) q4e4(op string, x []float64, b int) { r.op = op; q4e4(x, b, r.hook) }

// plain is W·x with no activation rounding (BF16 weights, wo_a).
func (r *ref) plain(base string, x []float64) ([]float64, error) {
	m, err := r.w.matrix(base)
	if err != nil {
		return nil, err
	}
	return m.mul(x), nil
}

// rmsnorm returns w ⊙ x / sqrt(mean(x²) + eps); w nil means no weight.
func rmsnorm(x, w []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	rs := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v * rs
		if w != nil {
			y[i] *= w[i]
		}
	}
	return y
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// DebugInfo collects intermediate results of a reference evaluation.
type DebugInfo struct {
	Picks   map[int][][]int     // layer → per position, the compressed entries attended
	Experts map[int][][]int     // layer → per position, the routed experts chosen
	Scores  map[int][][]float64 // layer → per position, indexer scores of the visible entries
	// NearTies lists, in order of computation, the simulated roundings
	// whose input lies within 1e-4 of a step of a rounding boundary: a
	// float32 implementation may round them the other way.
	NearTies []NearTie
	// Flip names near ties (NearTie.Key) to round the other way.
	Flip map[string]bool
}

// NearTie is one element of a simulated rounding that lies next to a
// rounding boundary.
type NearTie struct {
	Key    string  // "layer L pos P <Q8|Q4E8|Q4E4> elem E of <value>"
	Op     string  // the operation it was first seen in
	Pos    int     // first position whose result depends on it
	Margin float64 // distance to the boundary, in rounding steps
}
