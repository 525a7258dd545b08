package model

import (
	"fmt"
	"math"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Attention is one layer's attention block: a low-rank query path, a single
// shared key=value latent per token (window ring plus compressed entries), a
// per-head sink, and a grouped low-rank output projection.
type Attention struct {
	Layer, Ratio int
	Heads, D     int // query heads, head width (= latent width)
	Wqa          *kernels.Matrix
	QNorm        []float32
	Wqb          *kernels.Matrix
	Wkv          *kernels.Matrix
	KVNorm       []float32
	WoA          []*kernels.Matrix // one [o_lora_rank, Heads·D/G] matrix per group
	WoB          *kernels.Matrix
	Sink         []float32
	HeadNorm     bool // V4: unweighted RMSNorm of every query head

	Comp  *Compressor // V4 compressed layers; V4.1 KV sources
	Index *Indexer    // V4 CSA layers; V4.1 index sources
	// V4.1: indexer keys come from the compressed latent through Wk and KNorm.
	Wk    *kernels.Matrix
	KNorm []float32

	KVSource int // layer whose compressed KV (and index keys) this layer reads
	Rope     *RopeTable
	v41      bool
}

func (a *Attention) ownsIndexKeys() bool {
	return (a.Index != nil && a.Index.Comp != nil) || a.Wk != nil
}

func loadAttention(w Weights, p string, cfg checkpoint.Config, l, ratio int) (*Attention, error) {
	H, d, D := cfg.Heads, cfg.HeadDim, cfg.Dim
	a := &Attention{Layer: l, Ratio: ratio, Heads: H, D: d, KVSource: -1,
		HeadNorm: cfg.Arch == checkpoint.ArchV4, v41: cfg.Arch == checkpoint.ArchV41}
	var err error
	mat := func(dst **kernels.Matrix, name string, rows, cols int) {
		if err == nil {
			*dst, err = w.Matrix(p+name, rows, cols)
		}
	}
	vec := func(dst *[]float32, name string, n ...int) {
		if err == nil {
			*dst, err = w.Floats(p+name, n...)
		}
	}
	mat(&a.Wqa, "wq_a", cfg.QLoraRank, D)
	vec(&a.QNorm, "q_norm.weight", cfg.QLoraRank)
	mat(&a.Wqb, "wq_b", H*d, cfg.QLoraRank)
	mat(&a.Wkv, "wkv", d, D)
	vec(&a.KVNorm, "kv_norm.weight", d)
	var woa *kernels.Matrix
	G := cfg.OGroups
	mat(&woa, "wo_a", G*cfg.OLoraRank, H*d/G)
	mat(&a.WoB, "wo_b", D, G*cfg.OLoraRank)
	vec(&a.Sink, "attn_sink", H)
	if err != nil {
		return nil, err
	}
	if a.WoA, err = splitGroups(woa, G); err != nil {
		return nil, fmt.Errorf("%swo_a: %w", p, err)
	}
	m := a.Ratio
	switch {
	case cfg.Arch == checkpoint.ArchV4 && m > 0:
		a.KVSource = l
		a.Comp, err = loadCompressor(w, p+"compressor.", m, m == 4, d, D, true)
		if err == nil && m == 4 {
			a.Index = &Indexer{Heads: cfg.IndexHeads, HeadDim: cfg.IndexHeadDim, TopK: cfg.IndexTopK, Hadamard: true}
			mat(&a.Index.Wqb, "indexer.wq_b", cfg.IndexHeads*cfg.IndexHeadDim, cfg.QLoraRank)
			mat(&a.Index.WeightsProj, "indexer.weights_proj", cfg.IndexHeads, D)
			if err == nil {
				a.Index.Comp, err = loadCompressor(w, p+"indexer.compressor.", m, true, cfg.IndexHeadDim, D, true)
			}
		}
	case cfg.Arch == checkpoint.ArchV41 && m > 0:
		for _, s := range cfg.KVSourceLayers {
			if s <= l {
				a.KVSource = s
			}
		}
		if a.KVSource < 0 {
			return nil, fmt.Errorf("layer %d: compressed layer with no KV source at or before it", l)
		}
		if a.KVSource == l {
			a.Comp, err = loadCompressor(w, p+"compressor.", m, false, d, D, false)
			mat(&a.Wk, "indexer.wk", cfg.IndexHeadDim, d)
			vec(&a.KNorm, "indexer.k_norm.weight", cfg.IndexHeadDim)
		}
		if contains(cfg.IndexSourceLayers, l) {
			a.Index = &Indexer{Heads: cfg.IndexHeads, HeadDim: cfg.IndexHeadDim, TopK: cfg.IndexTopK}
			mat(&a.Index.Wqb, "indexer.wq_b", cfg.IndexHeads*cfg.IndexHeadDim, cfg.QLoraRank)
			mat(&a.Index.WeightsProj, "indexer.weights_proj", cfg.IndexHeads, D)
		}
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

func loadCompressor(w Weights, p string, m int, overlap bool, d, D int, ape bool) (*Compressor, error) {
	c := &Compressor{Ratio: m, Overlap: overlap, D: d}
	cd := c.width()
	var err error
	if c.Wkv, err = w.Matrix(p+"wkv", cd, D); err != nil {
		return nil, err
	}
	if m > 1 || w.Has(p+"wgate.weight") {
		if c.Wgate, err = w.Matrix(p+"wgate", cd, D); err != nil {
			return nil, err
		}
	}
	if ape {
		if c.Ape, err = w.Floats(p+"ape", m, cd); err != nil {
			return nil, err
		}
	}
	if c.Norm, err = w.Floats(p+"norm.weight", d); err != nil {
		return nil, err
	}
	return c, nil
}

// splitGroups cuts wo_a into its G row groups. The reference keeps wo_a in
// bf16 (dequantized at conversion, exact); a group is a zero-copy view when
// its rows align with the FP8 blocks, and a bf16 copy otherwise.
func splitGroups(w *kernels.Matrix, G int) ([]*kernels.Matrix, error) {
	if w.Rows%G != 0 {
		return nil, fmt.Errorf("%d rows not divisible by %d groups", w.Rows, G)
	}
	r := w.Rows / G
	out := make([]*kernels.Matrix, G)
	for g := range out {
		switch {
		case w.Format == kernels.BF16 || w.Format == kernels.F32 || w.Format == kernels.F16:
			es := len(w.Data) / (w.Rows * w.Cols)
			out[g] = &kernels.Matrix{Format: w.Format, Rows: r, Cols: w.Cols, Data: w.Data[g*r*w.Cols*es : (g+1)*r*w.Cols*es]}
		case w.Format == kernels.FP8 && r%w.Block == 0:
			nb := (w.Cols + w.Block - 1) / w.Block
			sb := r / w.Block
			out[g] = &kernels.Matrix{Format: kernels.FP8, Rows: r, Cols: w.Cols, Block: w.Block,
				Data: w.Data[g*r*w.Cols : (g+1)*r*w.Cols], Scales: w.Scales[g*sb*nb : (g+1)*sb*nb]}
		default:
			buf := make([]byte, 2*r*w.Cols)
			for i := 0; i < r; i++ {
				for c := 0; c < w.Cols; c++ {
					h := kernels.F32ToBF16(w.At(g*r+i, c))
					buf[2*(i*w.Cols+c)] = byte(h)
					buf[2*(i*w.Cols+c)+1] = byte(h >> 8)
				}
			}
			out[g] = &kernels.Matrix{Format: kernels.BF16, Rows: r, Cols: w.Cols, Data: buf}
		}
	}
	return out, nil
}

// attentionBatch runs the block for the R rows of h ([R, dim]), the tokens
// of every sequence of the batch, and returns [R, dim]. The projections take
// all rows at once; caches, compressors, selection and attention are per
// sequence.
func (m *Model) attentionBatch(a *Attention, h []float32, b *batch) []float32 {
	cfg := m.Config
	R, H, d := b.R, a.Heads, a.D

	// Query path: c_q = RMSNorm(wq_a·x); q = wq_b·c_q; (V4) per-head norm; RoPE.
	cq := m.linear(a.Wqa, h, R)
	rmsnormRows(cq, a.QNorm, cfg.NormEps)
	q := m.linear(a.Wqb, cq, R)
	rot := make([]Rotation, R)
	for r := 0; r < R; r++ {
		rot[r] = a.Rope.At(b.pos[r])
		for hd := 0; hd < H; hd++ {
			v := q[(r*H+hd)*d : (r*H+hd+1)*d]
			if a.HeadNorm {
				kernels.RMSNorm(v, v, nil, cfg.NormEps)
			}
			rot[r].Apply(v, false)
		}
	}

	// Window key=value: RMSNorm(wkv·x), RoPE, simulated FP8.
	kv := m.linear(a.Wkv, h, R)
	rmsnormRows(kv, a.KVNorm, cfg.NormEps)
	for r := 0; r < R; r++ {
		v := kv[r*d : (r+1)*d]
		rot[r].Apply(v, false)
		if m.Numerics.KVQuant {
			if a.v41 {
				kernels.QuantDequantFP8(v, cfg.FP8Block)
			} else {
				kernels.QuantDequantFP8(v[:d-cfg.RopeDim], 64)
			}
		}
	}

	// Compressor projections and indexer queries of all rows.
	var cp *compProj
	if a.Comp != nil {
		cp = m.compProject(a, h, R)
	}
	var qs []IndexQuery
	if a.Ratio > 0 && a.Index != nil {
		qs = m.indexQueries(a.Index, rot, cq, h, R)
	}

	o := make([]float32, R*H*d)
	scale := float32(1 / math.Sqrt(float64(d)))
	W := cfg.Window
	for _, sp := range b.spans {
		ls := sp.st.layers[a.Layer]
		// Compressed entries (and indexer keys) for windows this chunk closes.
		if cp != nil {
			m.compress(a, ls, cp, sp)
		}
		var src *LayerState
		if a.KVSource >= 0 {
			src = sp.st.layers[a.KVSource]
		}
		// Attention per token over window rows and selected compressed rows.
		for t := 0; t < sp.T; t++ {
			r, p := sp.r0+t, sp.p0+t
			// Which compressed entries the token reads.
			var sel []int
			if a.Ratio > 0 {
				switch {
				case a.Index != nil:
					sel = m.selectEntries(a, src, qs[r], p, b, r)
				case a.v41:
					sel = b.topk[r]
				default: // HCA: every visible entry
					sel = make([]int, min((p+1)/a.Ratio, src.KV.Len()))
					for i := range sel {
						sel[i] = i
					}
				}
			}
			rows := make([][]float32, 0, W+len(sel))
			for pp := max(0, p-W+1); pp <= p; pp++ {
				if pp < sp.p0 {
					rows = append(rows, ls.Window.Row(pp))
				} else {
					rr := sp.r0 + pp - sp.p0
					rows = append(rows, kv[rr*d:(rr+1)*d])
				}
			}
			for _, w := range sel {
				rows = append(rows, src.KV.Rows[w])
			}
			or := o[r*H*d : (r+1)*H*d]
			m.be.Attend(or, q[r*H*d:(r+1)*H*d], H, d, rows, a.Sink, scale)
			for hd := 0; hd < H; hd++ {
				rot[r].Apply(or[hd*d:(hd+1)*d], true)
			}
			if sp.trace != nil && a.Ratio > 0 {
				sp.trace.addSelection(a.Layer, t, sel)
			}
		}
		// The ring is written only after the chunk's attention.
		for t := max(0, sp.T-W); t < sp.T; t++ {
			r := sp.r0 + t
			copy(ls.Window.Row(sp.p0+t), kv[r*d:(r+1)*d])
		}
	}

	// Grouped output projection: u_g = wo_a[g]·o_g (no activation quant), y = wo_b·u.
	G := len(a.WoA)
	gw := H * d / G
	or := a.WoA[0].Rows
	u := make([]float32, R*G*or)
	og := make([]float32, R*gw)
	ug := make([]float32, R*or)
	for g := 0; g < G; g++ {
		for r := 0; r < R; r++ {
			copy(og[r*gw:(r+1)*gw], o[r*H*d+g*gw:r*H*d+(g+1)*gw])
		}
		m.be.MatMul(ug, a.WoA[g], og, R)
		for r := 0; r < R; r++ {
			copy(u[r*G*or+g*or:r*G*or+(g+1)*or], ug[r*or:(r+1)*or])
		}
	}
	return m.linear(a.WoB, u, R)
}

// compProj holds the compressor projections of every row of a batch: the
// layer's own compressor and, in V4 CSA layers, the indexer's.
type compProj struct {
	A, Z   []float32
	IA, IZ []float32
}

func (m *Model) compProject(a *Attention, h []float32, R int) *compProj {
	cp := &compProj{}
	cp.A, cp.Z = a.Comp.Project(m.be, h, R)
	if ix := a.Index; ix != nil && ix.Comp != nil {
		cp.IA, cp.IZ = ix.Comp.Project(m.be, h, R)
	}
	return cp
}

// compress feeds one sequence's tokens to the layer's compressor(s) and
// appends every entry they emit, post-processed: norm, RoPE at the window's
// first position, simulated low precision.
func (m *Model) compress(a *Attention, ls *LayerState, cp *compProj, sp span) {
	cfg := m.Config
	cd := a.Comp.width()
	for t := 0; t < sp.T; t++ {
		r := sp.r0 + t
		e, ok := a.Comp.Push(ls.Comp, cp.A[r*cd:(r+1)*cd], cp.Z[r*cd:(r+1)*cd], sp.p0+t)
		if !ok {
			continue
		}
		w := ls.KV.Len()
		pos := w * a.Ratio
		kernels.RMSNorm(e, e, a.Comp.Norm, cfg.NormEps)
		if a.Wk != nil { // V4.1: index key from the pre-RoPE latent
			k := make([]float32, a.Wk.Rows)
			m.be.MatMul(k, a.Wk, e, 1)
			kernels.RMSNorm(k, k, a.KNorm, cfg.NormEps)
			a.Rope.Apply(k, pos, false)
			m.indexQuant(k, false)
			ls.IndexKeys.Rows = append(ls.IndexKeys.Rows, k)
		}
		a.Rope.Apply(e, pos, false)
		if m.Numerics.KVQuant {
			if a.v41 {
				kernels.QuantDequantFP4E4M3(e, 16)
			} else {
				kernels.QuantDequantFP8(e[:a.D-cfg.RopeDim], 64)
			}
		}
		ls.KV.Rows = append(ls.KV.Rows, e)
	}
	if ix := a.Index; ix != nil && ix.Comp != nil { // V4 indexer keys
		cd := ix.Comp.width()
		for t := 0; t < sp.T; t++ {
			r := sp.r0 + t
			e, ok := ix.Comp.Push(ls.IndexComp, cp.IA[r*cd:(r+1)*cd], cp.IZ[r*cd:(r+1)*cd], sp.p0+t)
			if !ok {
				continue
			}
			pos := ls.IndexKeys.Len() * a.Ratio
			kernels.RMSNorm(e, e, ix.Comp.Norm, cfg.NormEps)
			a.Rope.Apply(e, pos, false)
			m.indexQuant(e, true)
			ls.IndexKeys.Rows = append(ls.IndexKeys.Rows, e)
		}
	}
}

// selectEntries runs the indexer for the token at position p (row t of the
// batch) and returns the compressed entries it attends, sorted by index. In
// V4.1 it also publishes them (and, at the candidate source, the candidate
// mask) for the layers that reuse them.
func (m *Model) selectEntries(a *Attention, src *LayerState, q IndexQuery, p int, c *batch, t int) []int {
	cfg := m.Config
	nvis := min((p+1)/a.Ratio, src.IndexKeys.Len())
	scores := a.Index.Scores(q, src.IndexKeys, nvis)
	if a.v41 && cfg.CandidateSource >= 0 {
		switch {
		case a.Layer == cfg.CandidateSource:
			c.cand[t] = candidateMask(scores, cfg.CandidateBlock, cfg.CandidateTopK)
		case a.Layer > cfg.CandidateSource && c.cand[t] != nil:
			for i := range scores {
				if !c.cand[t][i] {
					scores[i] = float32(math.Inf(-1))
				}
			}
		}
	}
	sel := TopKIndices(scores, a.Index.TopK)
	if a.v41 {
		c.topk[t] = sel
	}
	return sel
}

// candidateMask is V4.1's first indexer level: split the scores into blocks,
// score each block by its maximum, always keep the block holding the newest
// position, and keep the best topBlocks blocks.
func candidateMask(scores []float32, block, topBlocks int) []bool {
	n := len(scores)
	keep := make([]bool, n)
	if n == 0 {
		return keep
	}
	nb := (n + block - 1) / block
	bs := make([]float32, nb)
	for b := range bs {
		bs[b] = float32(math.Inf(-1))
		for i := b * block; i < min(n, (b+1)*block); i++ {
			bs[b] = max(bs[b], scores[i])
		}
	}
	bs[(n-1)/block] = float32(math.Inf(1))
	for _, b := range TopKIndices(bs, min(topBlocks, nb)) {
		for i := b * block; i < min(n, (b+1)*block); i++ {
			keep[i] = true
		}
	}
	return keep
}
