package model

import (
	"fmt"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Input is one chunk of a sequence: its token ids and, for V4.1 Engram
// layers, the table rows of each token (Engram[t][i] for the i-th Engram
// layer), as the edge computes them.
type Input struct {
	Tokens []int
	Engram [][][]int64
}

// Trace records what the model did for the last token of a chunk, for
// people who want to look inside: the compressed entries each compressed
// layer attended, and the mHC mixing matrix of each attention site.
type Trace struct {
	Selected map[int][]int     // layer → compressed entry indices
	Comb     map[int][]float32 // layer → n×n attention-site mixing matrix
	// EveryToken also records, per compressed layer, the entries each token
	// of the chunk attended (SelectedAll[layer][t]).
	EveryToken  bool
	SelectedAll map[int][][]int
	last        int
}

func (tr *Trace) addSelection(layer, t int, sel []int) {
	if t == tr.last {
		tr.Selected[layer] = append([]int(nil), sel...)
	}
	if tr.EveryToken {
		tr.SelectedAll[layer] = append(tr.SelectedAll[layer], append([]int(nil), sel...))
	}
}

// Options tune one Forward call.
type Options struct {
	AllLogits bool   // logits of every position, else of the last only
	Trace     *Trace // filled when non-nil
}

// Forward runs the tokens of in through the model, continuing the sequence
// held in st (which it updates), and returns float32 logits: [T, vocab] with
// AllLogits, else [vocab] for the last token. Prefill in several chunks,
// one chunk, or token by token computes the same function.
func (m *Model) Forward(st *State, in Input, opt Options) ([]float32, error) {
	cfg := m.Config
	T := len(in.Tokens)
	if T == 0 {
		return nil, fmt.Errorf("forward: no tokens")
	}
	for i, tok := range in.Tokens {
		if tok < 0 || tok >= cfg.VocabSize {
			return nil, fmt.Errorf("forward: token %d at index %d outside the vocabulary [0,%d)", tok, i, cfg.VocabSize)
		}
	}
	if len(cfg.EngramLayers) > 0 && len(in.Engram) != T {
		return nil, fmt.Errorf("forward: V4.1 needs Engram rows for each of the %d tokens, got %d", T, len(in.Engram))
	}
	n, D := cfg.HCMult, cfg.Dim
	c := &chunk{T: T, p0: st.Pos, tokens: in.Tokens, topk: make([][]int, T), cand: make([][]bool, T), trace: opt.Trace}
	if tr := opt.Trace; tr != nil {
		tr.Selected, tr.Comb, tr.SelectedAll, tr.last = map[int][]int{}, map[int][]float32{}, map[int][][]int{}, T-1
	}

	// Embedding, copied into every stream.
	X := make([]float32, T*n*D)
	for t, tok := range in.Tokens {
		m.embed.RowF32(X[t*n*D:(t*n+1)*D], tok)
		for s := 1; s < n; s++ {
			copy(X[(t*n+s)*D:(t*n+s+1)*D], X[t*n*D:(t*n+1)*D])
		}
	}
	// V4.1 collapses each site with the previous site's pre; layer 0 starts
	// from stream 0 alone.
	lagPre := make([][]float32, T)
	for t := range lagPre {
		lagPre[t] = make([]float32, n)
		lagPre[t][0] = 1
	}
	v41 := cfg.Arch == checkpoint.ArchV41
	u := make([]float32, T*D)
	engramIdx := 0
	for _, ly := range m.layers {
		if ly.Engram != nil {
			rows := make([][]int64, T)
			for t := range rows {
				if engramIdx >= len(in.Engram[t]) {
					return nil, fmt.Errorf("forward: token %d has no rows for Engram layer %d", t, ly.Index)
				}
				rows[t] = in.Engram[t][engramIdx]
			}
			if err := m.engram(ly.Engram, X, rows, T); err != nil {
				return nil, fmt.Errorf("layer %d: %w", ly.Index, err)
			}
			engramIdx++
		}
		// Attention site.
		mixes := ly.AttnHC.Mixes(m.be, X, T)
		m.collapse(u, X, mixes, lagPre, v41, ly.AttnNorm)
		y := m.attention(ly.Attn, st, u, c)
		for t := 0; t < T; t++ {
			Expand(X[t*n*D:(t+1)*n*D], y[t*D:(t+1)*D], mixes[t])
		}
		if opt.Trace != nil {
			opt.Trace.Comb[ly.Index] = mixes[T-1].Comb
		}
		// Feed-forward site.
		mixes = ly.FFNHC.Mixes(m.be, X, T)
		m.collapse(u, X, mixes, lagPre, v41, ly.FFNNorm)
		y = m.moe(ly.MoE, u, in.Tokens, T)
		for t := 0; t < T; t++ {
			Expand(X[t*n*D:(t+1)*n*D], y[t*D:(t+1)*D], mixes[t])
		}
	}
	st.Pos += T

	// Final collapse, norm and head.
	first := 0
	if !opt.AllLogits {
		first = T - 1
	}
	var pre [][]float32
	if v41 {
		pre = lagPre
	} else {
		pre = m.hcHead.Pre(m.be, X, T)
	}
	rows := T - first
	h := make([]float32, rows*D)
	for t := first; t < T; t++ {
		ht := h[(t-first)*D : (t-first+1)*D]
		Collapse(ht, X[t*n*D:(t+1)*n*D], pre[t])
		kernels.RMSNorm(ht, ht, m.norm, cfg.NormEps)
	}
	logits := make([]float32, rows*cfg.VocabSize)
	m.be.MatMul(logits, m.head, h, rows)
	return logits, nil
}

// collapse writes each token's sublayer input: RMSNorm(Σ_j pre_j·X_j). V4
// uses this site's pre; V4.1 the previous site's, and hands this site's on.
func (m *Model) collapse(u, X []float32, mixes []HCMix, lagPre [][]float32, v41 bool, norm []float32) {
	n, D := m.Config.HCMult, m.Config.Dim
	for t, mix := range mixes {
		pre := mix.Pre
		if v41 {
			pre, lagPre[t] = lagPre[t], mix.Pre
		}
		ut := u[t*D : (t+1)*D]
		Collapse(ut, X[t*n*D:(t+1)*n*D], pre)
		kernels.RMSNorm(ut, ut, norm, m.Config.NormEps)
	}
}
