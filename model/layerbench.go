package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// RandomWeights produces random tensors in the released dtypes by name, so a
// layer of real dimensions can be built without a checkpoint (benchmarks).
type RandomWeights struct {
	Cfg checkpoint.Config
	rng *rand.Rand
}

// NewRandomWeights returns a deterministic random weight source.
func NewRandomWeights(cfg checkpoint.Config, seed uint64) *RandomWeights {
	return &RandomWeights{Cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (r *RandomWeights) fill(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.rng.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.rng.Uint32())
	}
}

// Matrix implements Weights: experts are FP4, compressor, indexer head
// weights, gates, embeddings and the head are bf16, hc_* are f32, the rest FP8.
func (r *RandomWeights) Matrix(base string, rows, cols int) (*kernels.Matrix, error) {
	m := &kernels.Matrix{Rows: rows, Cols: cols}
	switch {
	case strings.Contains(base, ".experts."):
		m.Format = kernels.FP4
		m.Data = make([]byte, rows*cols/2)
		r.fill(m.Data)
		m.Scales = make([]byte, rows*cols/32)
		for i := range m.Scales {
			m.Scales[i] = 127 - 6 // 2^-6: values stay O(0.1)
		}
	case strings.Contains(base, "hc_"):
		m.Format = kernels.F32
		m.Data = make([]byte, 4*rows*cols)
		for i := 0; i < rows*cols; i++ {
			binary.LittleEndian.PutUint32(m.Data[4*i:], math.Float32bits(float32(r.rng.NormFloat64()*0.01)))
		}
	case strings.Contains(base, "compressor.") || strings.HasSuffix(base, "weights_proj") ||
		strings.HasSuffix(base, "ffn.gate") || base == "embed" || base == "head" || strings.HasSuffix(base, "indexer.wk"):
		m.Format = kernels.BF16
		m.Data = make([]byte, 2*rows*cols)
		s := 1 / math.Sqrt(float64(cols))
		for i := 0; i < rows*cols; i++ {
			binary.LittleEndian.PutUint16(m.Data[2*i:], kernels.F32ToBF16(float32(r.rng.NormFloat64()*s)))
		}
	default:
		b := r.Cfg.FP8Block
		m.Format, m.Block = kernels.FP8, b
		m.Data = make([]byte, rows*cols)
		r.fill(m.Data)
		for i, v := range m.Data {
			if v&0x7f == 0x7f { // no NaN codes
				m.Data[i] = v &^ 1
			}
		}
		m.Scales = make([]byte, ((rows+b-1)/b)*((cols+b-1)/b))
		for i := range m.Scales {
			m.Scales[i] = 127 - 10
		}
	}
	return m, nil
}

// Floats implements Weights with small random values (norm weights near 1).
func (r *RandomWeights) Floats(name string, shape ...int) ([]float32, error) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	out := make([]float32, n)
	for i := range out {
		if strings.Contains(name, "norm") || strings.HasSuffix(name, "_weight") {
			out[i] = 1 + float32(r.rng.NormFloat64()*0.1)
		} else {
			out[i] = float32(r.rng.NormFloat64() * 0.1)
		}
	}
	return out, nil
}

// Ints implements Weights: distinct random experts per row.
func (r *RandomWeights) Ints(name string, shape ...int) ([]int32, error) {
	rows, k := shape[0], shape[1]
	out := make([]int32, rows*k)
	for i := 0; i < rows; i++ {
		p := r.rng.Perm(r.Cfg.Experts)
		for j := 0; j < k; j++ {
			out[i*k+j] = int32(p[j])
		}
	}
	return out, nil
}

// Has implements Weights.
func (r *RandomWeights) Has(name string) bool { return true }

// LayerBench is one measured decode step of a single layer.
type LayerBench struct {
	Context  int           // tokens already in the cache
	Time     time.Duration // median over the runs
	Best     time.Duration // fastest run: on a shared machine, the least disturbed
	Bytes    int64         // weights and cache bytes the step must read
	Kind     string
	Selected int // compressed entries attended
	WeightB  int64
	CacheB   int64
}

// BenchDecodeLayer builds layer l of cfg with random weights and times one
// decode step (both mHC sites, attention with its compressor and indexer,
// MoE) at each context length, with caches filled with random entries.
func BenchDecodeLayer(cfg checkpoint.Config, l int, contexts []int, be kernels.Backend, runs int) ([]LayerBench, error) {
	lb, err := NewLayerBench(cfg, l, be)
	if err != nil {
		return nil, err
	}
	var out []LayerBench
	for _, ctx := range contexts {
		r, err := lb.Run(ctx, runs)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// DecodeLayerBench is one layer of random weights ready to be timed; it
// separates the (slow) weight generation from the timed decode steps, so a
// profiler can be started around Run alone.
type DecodeLayerBench struct {
	cfg checkpoint.Config
	l   int
	be  kernels.Backend
	m   *Model
	ly  *Layer
}

// NewLayerBench builds layer l of cfg with random weights on backend be.
func NewLayerBench(cfg checkpoint.Config, l int, be kernels.Backend) (*DecodeLayerBench, error) {
	w := NewRandomWeights(cfg, 1)
	ly, err := loadLayer(w, cfg, l)
	if err != nil {
		return nil, err
	}
	// The benchmark model holds this one layer at index 0.
	ly.Index, ly.Attn.Layer = 0, 0
	if ly.Attn.KVSource >= 0 {
		ly.Attn.KVSource = 0
	}
	m := &Model{Config: cfg, Numerics: ReferenceNumerics, be: be, layers: []*Layer{ly}}
	m.ropeMain = NewRopeTable(cfg.RopeDim, cfg.RopeTheta, nil)
	m.ropeCompress = NewRopeTable(cfg.RopeDim, cfg.CRopeTheta, &Yarn{Factor: cfg.RopeFactor, OrigSeqLen: cfg.OrigSeqLen, BetaFast: cfg.BetaFast, BetaSlow: cfg.BetaSlow})
	ly.Attn.Rope = m.ropeMain
	if ly.Ratio > 0 {
		ly.Attn.Rope = m.ropeCompress
	}
	return &DecodeLayerBench{cfg: cfg, l: l, be: be, m: m, ly: ly}, nil
}

// Run fills the caches with random entries for a context of ctx tokens and
// times runs decode steps (median reported); every step sees the same context.
func (lb *DecodeLayerBench) Run(ctx, runs int) (LayerBench, error) {
	cfg, m, ly, be := lb.cfg, lb.m, lb.ly, lb.be
	rng := rand.New(rand.NewPCG(7, 8))
	randVec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	n, D := cfg.HCMult, cfg.Dim
	st := m.NewState()
	ls := st.layers[0]
	copy(ls.Window.rows, randVec(len(ls.Window.rows)))
	if ls.KV != nil {
		for i := 0; i < ctx/ly.Ratio; i++ {
			ls.KV.Rows = append(ls.KV.Rows, randVec(cfg.HeadDim))
		}
	}
	if ls.IndexKeys != nil {
		for i := 0; i < ctx/ly.Ratio; i++ {
			ls.IndexKeys.Rows = append(ls.IndexKeys.Rows, randVec(cfg.IndexHeadDim))
		}
	}
	st.Pos = ctx
	X := randVec(n * D)
	var times []time.Duration
	var sel int
	for r := 0; r < runs; r++ {
		Xr := append([]float32(nil), X...)
		tr := &Trace{}
		c, err := m.newBatch([]*State{st}, []Input{{Tokens: []int{1}}}, []Options{{Trace: tr}})
		if err != nil {
			return LayerBench{}, err
		}
		u := make([]float32, D)
		start := time.Now()
		mix := ly.AttnHC.Mixes(be, Xr, 1)
		Collapse(u, Xr, mix[0].Pre)
		kernels.RMSNorm(u, u, ly.AttnNorm, cfg.NormEps)
		y := m.attentionBatch(ly.Attn, u, c)
		Expand(Xr, y, mix[0])
		mix = ly.FFNHC.Mixes(be, Xr, 1)
		Collapse(u, Xr, mix[0].Pre)
		kernels.RMSNorm(u, u, ly.FFNNorm, cfg.NormEps)
		y = m.moe(ly.MoE, u, []int{1}, 1)
		Expand(Xr, y, mix[0])
		times = append(times, time.Since(start))
		sel = len(tr.Selected[0])
		// Undo the cache growth of this step so every run sees the same context.
		if ls.KV != nil && ls.KV.Len() > ctx/ly.Ratio {
			ls.KV.Rows = ls.KV.Rows[:ctx/ly.Ratio]
		}
		if ls.IndexKeys != nil && ls.IndexKeys.Len() > ctx/ly.Ratio {
			ls.IndexKeys.Rows = ls.IndexKeys.Rows[:ctx/ly.Ratio]
		}
	}
	b := LayerBench{Context: ctx, Time: median(times), Best: slices.Min(times), Kind: LayerKind(cfg, lb.l), Selected: sel}
	b.WeightB = decodeWeightBytes(ly, cfg)
	b.CacheB = int64(4 * cfg.HeadDim * (min(cfg.Window, ctx+1) + sel))
	if ls.IndexKeys != nil {
		b.CacheB += int64(4 * cfg.IndexHeadDim * ls.IndexKeys.Len())
	}
	b.Bytes = b.WeightB + b.CacheB
	return b, nil
}

// decodeWeightBytes counts the weight bytes one decode step reads: every
// attention and gate matrix, the shared expert and TopK routed experts.
func decodeWeightBytes(ly *Layer, cfg checkpoint.Config) int64 {
	var b int64
	add := func(ms ...*kernels.Matrix) {
		for _, m := range ms {
			if m != nil {
				b += int64(m.Bytes())
			}
		}
	}
	a := ly.Attn
	add(ly.AttnHC.Fn, ly.FFNHC.Fn, a.Wqa, a.Wqb, a.Wkv, a.WoB, a.Wk)
	add(a.WoA...)
	if a.Comp != nil {
		add(a.Comp.Wkv, a.Comp.Wgate)
	}
	if a.Index != nil {
		add(a.Index.Wqb, a.Index.WeightsProj)
		if a.Index.Comp != nil {
			add(a.Index.Comp.Wkv, a.Index.Comp.Wgate)
		}
	}
	mo := ly.MoE
	add(mo.Gate, mo.Shared.W1, mo.Shared.W2, mo.Shared.W3)
	e := mo.Experts[0]
	b += int64(cfg.TopK) * int64(e.W1.Bytes()+e.W2.Bytes()+e.W3.Bytes())
	return b
}

func median(ts []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ts...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// FlashConfig returns the DeepSeek-V4-Flash hyperparameters (spec §1.1), for
// benchmarks at real shapes.
func FlashConfig() checkpoint.Config {
	ratios := []int{0, 0}
	for i := 0; i < 20; i++ {
		ratios = append(ratios, 4, 128)
	}
	ratios = append(ratios, 4, 0)
	return checkpoint.Config{
		Arch: checkpoint.ArchV4, Dim: 4096, Layers: 43, Heads: 64, HeadDim: 512, RopeDim: 64,
		QLoraRank: 1024, OGroups: 8, OLoraRank: 1024, Window: 128, VocabSize: 129280, NormEps: 1e-6,
		RopeTheta: 10000, CRopeTheta: 160000, RopeFactor: 16, OrigSeqLen: 65536, BetaFast: 32, BetaSlow: 1,
		MaxPositions: 1 << 20, CompressRatio: ratios, IndexHeads: 64, IndexHeadDim: 128, IndexTopK: 512,
		HCMult: 4, HCIters: 20, HCEps: 1e-6, MoEInter: 2048, Experts: 256, TopK: 6, Shared: 1, HashLayers: 3,
		RouteScale: 1.5, SwiGLULimit: 10, GateTemp: 1, MTPLayers: 1, BOS: 0, EOS: 1, FP8Block: 128, ExpertFP4: true,
		CandidateSource: -1,
	}
}

func (b LayerBench) String() string {
	return fmt.Sprintf("%s ctx %d: %v, %d MB read", b.Kind, b.Context, b.Time, b.Bytes>>20)
}
