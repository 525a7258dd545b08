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
// one chunk, or token by token computes the same function. It is the
// one-sequence case of ForwardBatch.
func (m *Model) Forward(st *State, in Input, opt Options) ([]float32, error) {
	out, err := m.ForwardBatch([]*State{st}, []Input{in}, []Options{opt})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ForwardBatch runs one chunk of each of several sequences in one pass:
// ins[i] continues the sequence held in sts[i]. Every projection takes the
// token rows of all sequences at once, so its weights are read once per
// call rather than once per sequence; everything that depends on a position
// (window rows, compressors, indexer, attention, V4.1 sharing, Engram rows,
// routing) stays per sequence and per token, so each sequence's logits are
// those Forward gives it alone (to float rounding of the kernels' batched
// paths). opts, nil or one per sequence, choose each sequence's logits and
// trace; out[i] is shaped as Forward's. A state may appear only once. On
// error no state has changed.
func (m *Model) ForwardBatch(sts []*State, ins []Input, opts []Options) ([][]float32, error) {
	b, err := m.newBatch(sts, ins, opts)
	if err != nil {
		return nil, err
	}
	defer b.fetch.join() // the Engram rows newBatch started fetching
	cfg := m.Config
	R := b.R
	n, D := cfg.HCMult, cfg.Dim

	// Embedding, copied into every stream.
	X := make([]float32, R*n*D)
	for r, tok := range b.tokens {
		m.embed.RowF32(X[r*n*D:(r*n+1)*D], tok)
		for s := 1; s < n; s++ {
			copy(X[(r*n+s)*D:(r*n+s+1)*D], X[r*n*D:(r*n+1)*D])
		}
	}
	// V4.1 collapses each site with the previous site's pre; layer 0 starts
	// from stream 0 alone.
	lagPre := make([][]float32, R)
	for r := range lagPre {
		lagPre[r] = make([]float32, n)
		lagPre[r][0] = 1
	}
	v41 := cfg.Arch == checkpoint.ArchV41
	u := make([]float32, R*D)
	engramIdx := 0
	for _, ly := range m.layers {
		if ly.Engram != nil {
			if err := m.engram(ly.Engram, X, b, engramIdx); err != nil {
				// newBatch checked the rows; this would be a bug.
				return nil, fmt.Errorf("layer %d: %w", ly.Index, err)
			}
			engramIdx++
		}
		// Attention site.
		mixes := ly.AttnHC.Mixes(m.be, X, R)
		m.collapse(u, X, mixes, lagPre, v41, ly.AttnNorm)
		y := m.attentionBatch(ly.Attn, u, b)
		for r := 0; r < R; r++ {
			Expand(X[r*n*D:(r+1)*n*D], y[r*D:(r+1)*D], mixes[r])
		}
		for _, sp := range b.spans {
			if sp.trace != nil {
				sp.trace.Comb[ly.Index] = mixes[sp.r0+sp.T-1].Comb
			}
		}
		// Feed-forward site.
		mixes = ly.FFNHC.Mixes(m.be, X, R)
		m.collapse(u, X, mixes, lagPre, v41, ly.FFNNorm)
		y = m.moe(ly.MoE, u, b.tokens, R)
		for r := 0; r < R; r++ {
			Expand(X[r*n*D:(r+1)*n*D], y[r*D:(r+1)*D], mixes[r])
		}
	}
	for _, sp := range b.spans {
		sp.st.Pos += sp.T
	}

	// Final collapse, norm and head, for the rows whose logits are asked
	// for: every row of AllLogits sequences, the last of the others.
	var rows []int
	for _, sp := range b.spans {
		first := sp.r0 + sp.T - 1
		if sp.all {
			first = sp.r0
		}
		for r := first; r < sp.r0+sp.T; r++ {
			rows = append(rows, r)
		}
	}
	Xh := make([]float32, len(rows)*n*D)
	for i, r := range rows {
		copy(Xh[i*n*D:(i+1)*n*D], X[r*n*D:(r+1)*n*D])
	}
	var pre [][]float32
	if v41 {
		for _, r := range rows {
			pre = append(pre, lagPre[r])
		}
	} else {
		pre = m.hcHead.Pre(m.be, Xh, len(rows))
	}
	h := make([]float32, len(rows)*D)
	for i := range rows {
		hi := h[i*D : (i+1)*D]
		Collapse(hi, Xh[i*n*D:(i+1)*n*D], pre[i])
		kernels.RMSNorm(hi, hi, m.norm, cfg.NormEps)
	}
	V := cfg.VocabSize
	logits := make([]float32, len(rows)*V)
	m.be.MatMul(logits, m.head, h, len(rows))
	out := make([][]float32, len(b.spans))
	i := 0
	for s, sp := range b.spans {
		k := 1
		if sp.all {
			k = sp.T
		}
		out[s] = logits[i*V : (i+k)*V : (i+k)*V]
		i += k
	}
	return out, nil
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
