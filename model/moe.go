package model

import (
	"fmt"
	"math"
	"sort"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// MoE is a layer's mixture of experts: a router (learned gate with a
// selection bias, or V4's fixed token→expert hash table), routed SwiGLU
// experts (FP4) and one shared expert (FP8).
type MoE struct {
	Gate    *kernels.Matrix // [E, dim] bf16, used in float32
	Bias    []float32       // [E] selection bias (score-routed layers)
	Tid2Eid []int32         // [vocab, TopK] (V4 hash layers)
	Experts []Expert
	Shared  Expert
	TopK    int
	Scale   float32 // route scale
	Limit   float32 // SwiGLU clamp
	Temp    float32 // V4.1 gate temperature
	Eps     float32 // added to the weight normaliser (0 in the reference)
}

// Expert is one SwiGLU feed-forward network: w2·(silu(w1·x)·(w3·x)).
type Expert struct {
	W1, W2, W3 *kernels.Matrix
}

func loadExpert(w Weights, p string, inter, D int) (Expert, error) {
	var e Expert
	var err error
	if e.W1, err = w.Matrix(p+"w1", inter, D); err != nil {
		return e, err
	}
	if e.W3, err = w.Matrix(p+"w3", inter, D); err != nil {
		return e, err
	}
	e.W2, err = w.Matrix(p+"w2", D, inter)
	return e, err
}

func loadMoE(w Weights, p string, cfg checkpoint.Config, l int) (*MoE, error) {
	E, D := cfg.Experts, cfg.Dim
	mo := &MoE{TopK: cfg.TopK, Scale: cfg.RouteScale, Limit: cfg.SwiGLULimit, Temp: cfg.GateTemp}
	if mo.Temp == 0 {
		mo.Temp = 1
	}
	if cfg.Arch == checkpoint.ArchV41 {
		mo.Eps = 1e-20 // V4.1 guards the weight normaliser; V4 divides by the plain sum
	}
	var err error
	if mo.Gate, err = w.Matrix(p+"gate", E, D); err != nil {
		return nil, err
	}
	if l < cfg.HashLayers {
		if mo.Tid2Eid, err = w.Ints(p+"gate.tid2eid", cfg.VocabSize, cfg.TopK); err != nil {
			return nil, err
		}
		for i, e := range mo.Tid2Eid {
			if e < 0 || int(e) >= E {
				return nil, fmt.Errorf("%sgate.tid2eid: row %d names expert %d of %d", p, i/cfg.TopK, e, E)
			}
		}
	} else if mo.Bias, err = w.Floats(p+"gate.bias", E); err != nil {
		return nil, err
	}
	mo.Experts = make([]Expert, E)
	for e := range mo.Experts {
		if mo.Experts[e], err = loadExpert(w, fmt.Sprintf("%sexperts.%d.", p, e), cfg.MoEInter, D); err != nil {
			return nil, err
		}
	}
	if mo.Shared, err = loadExpert(w, p+"shared_experts.", cfg.MoEInter*max(cfg.Shared, 1), D); err != nil {
		return nil, err
	}
	return mo, nil
}

// Route returns, for each of the T tokens, the chosen experts and their
// weights: scores s = sqrt(softplus(gate·x / temp)); experts = top-k of
// s + bias (or tid2eid[token]); weights = s[chosen]/Σ s[chosen] · route scale.
func (mo *MoE) Route(be kernels.Backend, x []float32, tokens []int, T int) (experts [][]int, weights [][]float32) {
	E := mo.Gate.Rows
	logits := make([]float32, T*E)
	be.MatMul(logits, mo.Gate, x, T)
	experts = make([][]int, T)
	weights = make([][]float32, T)
	for t := 0; t < T; t++ {
		s := logits[t*E : (t+1)*E]
		for i, v := range s {
			s[i] = float32(math.Sqrt(float64(kernels.Softplus(v / mo.Temp))))
		}
		var sel []int
		if mo.Tid2Eid != nil {
			for _, e := range mo.Tid2Eid[tokens[t]*mo.TopK : (tokens[t]+1)*mo.TopK] {
				sel = append(sel, int(e))
			}
		} else {
			sel = make([]int, E)
			for i := range sel {
				sel[i] = i
			}
			sort.SliceStable(sel, func(a, b int) bool { return s[sel[a]]+mo.Bias[sel[a]] > s[sel[b]]+mo.Bias[sel[b]] })
			sel = sel[:mo.TopK]
		}
		var sum float32
		for _, e := range sel {
			sum += s[e]
		}
		w := make([]float32, len(sel))
		for i, e := range sel {
			w[i] = s[e] / (sum + mo.Eps) * mo.Scale
		}
		experts[t], weights[t] = sel, w
	}
	return experts, weights
}

// Forward computes Σ_i w_i·expert_i(x) + shared(x) for T tokens of x. Tokens
// routed to the same expert go through it together.
func (m *Model) moe(mo *MoE, x []float32, tokens []int, T int) []float32 {
	D := m.Config.Dim
	experts, weights := mo.Route(m.be, x, tokens, T)
	// Group tokens by expert.
	byExpert := map[int][]int{}
	slot := map[[2]int]int{}
	for t, es := range experts {
		for i, e := range es {
			byExpert[e] = append(byExpert[e], t)
			slot[[2]int{t, e}] = i
		}
	}
	ids := make([]int, 0, len(byExpert))
	for e := range byExpert {
		ids = append(ids, e)
	}
	sort.Ints(ids)
	// The shared expert first, then the routed ones in id order.
	runs := []*expertRun{{e: mo.Shared, x: x, n: T}}
	for _, e := range ids {
		toks := byExpert[e]
		xs := make([]float32, len(toks)*D)
		ws := make([]float32, len(toks))
		for i, t := range toks {
			copy(xs[i*D:(i+1)*D], x[t*D:(t+1)*D])
			ws[i] = weights[t][slot[[2]int{t, e}]]
		}
		runs = append(runs, &expertRun{e: mo.Experts[e], x: xs, n: len(toks), w: ws})
	}
	m.experts(runs, mo.Limit)
	out := runs[0].y
	routed := make([]float32, T*D)
	for k, e := range ids {
		y := runs[k+1].y
		for i, t := range byExpert[e] {
			kernels.Axpy(routed[t*D:(t+1)*D], 1, y[i*D:(i+1)*D])
		}
	}
	kernels.Axpy(out, 1, routed)
	return out
}

// expertRun is one expert applied to n rows of x: routed experts carry the
// rows' routing weights w (nil for the shared expert); y receives the
// output.
type expertRun struct {
	e Expert
	x []float32
	n int
	w []float32
	y []float32
}

// experts runs SwiGLU experts on their rows: h = silu(min(w1·x, L))·clamp(w3·x, ±L)
// (times the routing weight, before w2, as the reference does); y = w2·h.
// The products of all the experts go to the backend as two batches, the
// w1 and w3 products and then the w2 products (kernels.MatMulAll): a
// decode step's seven experts are 21 short products, and each one alone
// would cost a synchronisation of the worker pool.
func (m *Model) experts(runs []*expertRun, limit float32) {
	var ops []kernels.MatMulOp
	gu := make([][2][]float32, len(runs))
	for i, r := range runs {
		I := r.e.W1.Rows
		gu[i] = [2][]float32{make([]float32, r.n*I), make([]float32, r.n*r.e.W3.Rows)}
		ops = append(ops,
			kernels.MatMulOp{Dst: gu[i][0], W: r.e.W1, X: m.linearInput(r.e.W1, r.x, r.n), N: r.n},
			kernels.MatMulOp{Dst: gu[i][1], W: r.e.W3, X: m.linearInput(r.e.W3, r.x, r.n), N: r.n})
	}
	kernels.MatMulAll(m.be, ops)
	ops = ops[:0]
	for i, r := range runs {
		I := r.e.W1.Rows
		h := make([]float32, r.n*I)
		kernels.SwiGLUClamped(h, gu[i][0], gu[i][1], limit)
		if r.w != nil {
			for k := 0; k < r.n; k++ {
				for j := k * I; j < (k+1)*I; j++ {
					h[j] *= r.w[k]
				}
			}
		}
		r.y = make([]float32, r.n*r.e.W2.Rows)
		ops = append(ops, kernels.MatMulOp{Dst: r.y, W: r.e.W2, X: m.linearInput(r.e.W2, h, r.n), N: r.n})
	}
	kernels.MatMulAll(m.be, ops)
}
