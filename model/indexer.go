package model

import (
	"math"
	"sort"

	"github.com/edgeseek/edgeseek/kernels"
)

// Indexer is the lightning indexer of a CSA layer: it scores every visible
// compressed entry for a query, I[w] = Σ_h ω_h·ReLU(⟨q_h, K_w⟩), and keeps the
// TopK best.
type Indexer struct {
	Heads, HeadDim, TopK int
	Wqb                  *kernels.Matrix // [Heads·HeadDim, q_lora_rank]
	WeightsProj          *kernels.Matrix // [Heads, dim]
	Comp                 *Compressor     // V4: the indexer's own compressor (width HeadDim)
	Hadamard             bool            // V4 rotates queries and keys before FP4
}

// IndexQuery is one token's indexer query: per-head vectors and head weights.
type IndexQuery struct {
	Q     []float32 // [Heads·HeadDim], rotated (and quantised) like the keys
	Omega []float32 // [Heads], already scaled by HeadDim^-½·Heads^-½
}

// Queries computes the indexer queries of T tokens from the query low-rank
// activations cq ([T, q_lora_rank]) and the attention input h ([T, dim]).
func (m *Model) indexQueries(ix *Indexer, rot []Rotation, cq, h []float32, T int) []IndexQuery {
	q := m.linear(ix.Wqb, cq, T)
	om := make([]float32, T*ix.Heads)
	m.be.MatMul(om, ix.WeightsProj, h, T)
	out := make([]IndexQuery, T)
	hs := float32(1 / math.Sqrt(float64(ix.Heads)))
	for t := range out {
		qt := q[t*ix.Heads*ix.HeadDim : (t+1)*ix.Heads*ix.HeadDim]
		for hd := 0; hd < ix.Heads; hd++ {
			v := qt[hd*ix.HeadDim : (hd+1)*ix.HeadDim]
			rot[t].Apply(v, false)
			m.indexQuant(v, ix.Hadamard)
		}
		w := om[t*ix.Heads : (t+1)*ix.Heads]
		for i := range w {
			w[i] *= hs
		}
		out[t] = IndexQuery{Q: qt, Omega: w}
	}
	return out
}

// indexQuant applies the reference's FP4 simulation of indexer vectors (with
// V4's Hadamard rotation first, which alone leaves scores unchanged).
func (m *Model) indexQuant(v []float32, hadamard bool) {
	if !m.Numerics.IndexerQuant {
		return
	}
	if hadamard {
		kernels.Hadamard(v)
	}
	kernels.QuantDequantFP4(v, 32)
}

// Scores returns I[w] for the first nvis keys.
func (ix *Indexer) Scores(q IndexQuery, keys *CompressedKV, nvis int) []float32 {
	ds := float32(1 / math.Sqrt(float64(ix.HeadDim)))
	s := make([]float32, nvis)
	for w := 0; w < nvis; w++ {
		k := keys.Rows[w]
		var acc float32
		for h := 0; h < ix.Heads; h++ {
			d := kernels.Dot(q.Q[h*ix.HeadDim:(h+1)*ix.HeadDim], k)
			if d > 0 {
				acc += d * ds * q.Omega[h]
			}
		}
		s[w] = acc
	}
	return s
}

// TopKIndices returns the indices of the k largest scores (ties: lower index
// first), sorted by index. Entries with score −Inf are never chosen.
func TopKIndices(scores []float32, k int) []int {
	idx := make([]int, 0, len(scores))
	for i, v := range scores {
		if !math.IsInf(float64(v), -1) {
			idx = append(idx, i)
		}
	}
	if k < len(idx) {
		sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
		idx = idx[:k]
	}
	sort.Ints(idx)
	return idx
}
