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
	Omega []float32 // [Heads], already scaled by Heads^-½ (HeadDim^-½ is applied in Scores)

	be kernels.Backend // the backend that made the query; Scores runs on it
}

// indexScorer is implemented by backends with a parallel indexer-scoring
// kernel (kernels.CPU).
type indexScorer interface {
	IndexScores(dst, q []float32, heads, d int, w []float32, keys [][]float32)
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
		out[t] = IndexQuery{Q: qt, Omega: w, be: m.be}
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

// Scores returns I[w] for the first nvis keys, computed by the kernel
// kernels.IndexScores (all keys at once, split over keys between the
// backend's threads) with head weights ω_h·HeadDim^-½.
func (ix *Indexer) Scores(q IndexQuery, keys *CompressedKV, nvis int) []float32 {
	ds := float32(1 / math.Sqrt(float64(ix.HeadDim)))
	w := make([]float32, ix.Heads)
	for h := range w {
		w[h] = ds * q.Omega[h]
	}
	s := make([]float32, nvis)
	if sc, ok := q.be.(indexScorer); ok {
		sc.IndexScores(s, q.Q, ix.Heads, ix.HeadDim, w, keys.Rows[:nvis])
	} else {
		kernels.IndexScores(nil, s, q.Q, ix.Heads, ix.HeadDim, w, keys.Rows[:nvis])
	}
	return s
}

// TopKIndices returns the indices of the k largest scores (ties: lower index
// first), sorted by index. Entries with score −Inf are never chosen; NaN
// ranks below every other score. It keeps a k-entry heap of the best so far,
// so at 128K context (32K scores, k=512) a step costs a pass over the scores
// rather than a full sort.
func TopKIndices(scores []float32, k int) []int {
	n := 0
	for _, v := range scores {
		if !math.IsInf(float64(v), -1) {
			n++
		}
	}
	if k >= n {
		idx := make([]int, 0, n)
		for i, v := range scores {
			if !math.IsInf(float64(v), -1) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	if k <= 0 {
		return []int{}
	}
	// better reports whether entry i outranks entry j.
	better := func(i, j int) bool {
		si, sj := scores[i], scores[j]
		ni, nj := si != si, sj != sj
		switch {
		case ni || nj:
			if ni && nj {
				return i < j
			}
			return nj
		case si != sj:
			return si > sj
		}
		return i < j
	}
	// h is a min-heap under better: h[0] is the worst entry kept.
	h := make([]int, 0, k)
	down := func(p int) {
		for {
			c := 2*p + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && better(h[c], h[c+1]) {
				c++
			}
			if !better(h[p], h[c]) {
				return
			}
			h[p], h[c] = h[c], h[p]
			p = c
		}
	}
	for i, v := range scores {
		if math.IsInf(float64(v), -1) {
			continue
		}
		if len(h) < k {
			h = append(h, i)
			if len(h) == k {
				for p := k/2 - 1; p >= 0; p-- {
					down(p)
				}
			}
			continue
		}
		if better(i, h[0]) {
			h[0] = i
			down(0)
		}
	}
	sort.Ints(h)
	return h
}
