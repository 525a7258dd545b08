package reftest

import (
	"fmt"
	"math"
)

// moe computes one layer's MoE output for every position from its input xs
// (after ffn_norm), spec mhc-moe-engram-encoding.md §3: sqrt-softplus
// router scores; experts chosen by tid2eid (V4 hash layers) or by the top-k
// of score + bias (ties toward the lower expert); weights = the unbiased
// scores of the chosen experts over their sum, times route_scale; clamped
// SwiGLU experts with the weight applied before w2; plus the shared expert.
func (r *ref) moe(l int, p string, xs [][]float64) ([][]float64, error) {
	c := r.cfg
	hash := !r.v41 && l < c.HashLayers
	var tid []int64
	var bias []float64
	var err error
	if hash {
		if tid, err = r.w.ints(p + "gate.tid2eid"); err != nil {
			return nil, err
		}
	} else if bias, err = r.w.vec(p + "gate.bias"); err != nil {
		return nil, err
	}
	ys := make([][]float64, len(xs))
	for t, x := range xs {
		r.pos = t
		z, err := r.plain(p+"gate", x)
		if err != nil {
			return nil, err
		}
		s := make([]float64, len(z))
		for e, v := range z {
			if r.v41 {
				v /= float64(c.GateTemp)
			}
			s[e] = math.Sqrt(softplus(v))
		}
		var chosen []int
		if hash {
			for k := 0; k < c.TopK; k++ {
				chosen = append(chosen, int(tid[r.toks[t]*c.TopK+k]))
			}
		} else {
			biased := make([]float64, len(s))
			for e := range s {
				biased[e] = s[e] + bias[e]
			}
			chosen = topK(biased, c.TopK, nil)
			r.noteTopKGap("route", biased, c.TopK, nil)
		}
		if r.dbg != nil {
			if r.dbg.Experts == nil {
				r.dbg.Experts = map[int][][]int{}
			}
			if len(r.dbg.Experts[l]) != len(xs) {
				r.dbg.Experts[l] = make([][]int, len(xs))
			}
			r.dbg.Experts[l][t] = chosen
		}
		sum := 0.0
		for _, e := range chosen {
			sum += s[e]
		}
		if r.v41 {
			sum += 1e-20
		}
		y := make([]float64, c.Dim)
		for _, e := range chosen {
			if e < 0 || e >= c.Experts {
				return nil, fmt.Errorf("%s: expert %d out of range", p, e)
			}
			o, err := r.expert(fmt.Sprintf("%sexperts.%d.", p, e), x, s[e]/sum*float64(c.RouteScale))
			if err != nil {
				return nil, err
			}
			add(y, o)
		}
		if c.Shared > 0 {
			o, err := r.expert(p+"shared_experts.", x, 1)
			if err != nil {
				return nil, err
			}
			add(y, o)
		}
		ys[t] = y
	}
	return ys, nil
}

// expert is w2 · (weight · silu(min(w1·x, L)) · clamp(w3·x, −L, L)).
func (r *ref) expert(p string, x []float64, weight float64) ([]float64, error) {
	L := float64(r.cfg.SwiGLULimit)
	g, err := r.linear(p+"w1", x)
	if err != nil {
		return nil, err
	}
	u, err := r.linear(p+"w3", x)
	if err != nil {
		return nil, err
	}
	a := make([]float64, len(g))
	for i := range a {
		gi := math.Min(g[i], L)
		ui := math.Max(-L, math.Min(u[i], L))
		a[i] = gi * sigmoid(gi) * ui * weight
	}
	return r.linear(p+"w2", a)
}

// softplus is log(1+e^x), returning x itself above 20 as PyTorch does.
func softplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func add(y, x []float64) {
	for i, v := range x {
		y[i] += v
	}
}

// engramLayer adds the V4.1 Engram contribution to every stream of every
// position (spec mhc-moe-engram-encoding.md §4.5): e = the concatenated
// dequantized table rows, kv = wkv·e split into one key per stream and one
// shared value, gate_m = sigmoid(signed_sqrt(⟨h_m ⊙ q_m ⊙ k_m, key_m⟩ ·
// rstd(h_m)·rstd(key_m)/sqrt(D))) with |dot| floored at 1e-6, h_m += gate_m·v.
func (r *ref) engramLayer(p string, i int, X streams) error {
	c := r.cfg
	D, n := c.Dim, c.HCMult
	qw, err := r.w.vec(p + "q_weight")
	if err != nil {
		return err
	}
	kw, err := r.w.vec(p + "k_weight")
	if err != nil {
		return err
	}
	eps := float64(c.NormEps)
	rstd := func(v []float64) float64 {
		ss := 0.0
		for _, x := range v {
			ss += x * x
		}
		return 1 / math.Sqrt(ss/float64(len(v))+eps)
	}
	for t := range X {
		r.pos = t
		if i >= len(r.engram[t]) {
			return fmt.Errorf("position %d: no rows for Engram layer %d", t, i)
		}
		var e []float64
		for _, row := range r.engram[t][i] {
			v, err := r.w.tableRow(p+"embed", row)
			if err != nil {
				return err
			}
			e = append(e, v...)
		}
		kv, err := r.linear(p+"wkv", e)
		if err != nil {
			return err
		}
		if len(kv) != (n+1)*D {
			return fmt.Errorf("%swkv: output %d, want %d", p, len(kv), (n+1)*D)
		}
		v := kv[n*D:]
		for m := 0; m < n; m++ {
			h, key := X[t][m], kv[m*D:(m+1)*D]
			s := 0.0
			for j := range h {
				s += h[j] * qw[m*D+j] * kw[m*D+j] * key[j]
			}
			s *= rstd(h) * rstd(key) / math.Sqrt(float64(D))
			g := sigmoid(math.Copysign(math.Sqrt(math.Max(math.Abs(s), 1e-6)), s))
			for j := range h {
				h[j] += g * v[j]
			}
		}
	}
	return nil
}
