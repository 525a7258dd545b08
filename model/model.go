// Package model holds a DeepSeek-V4 / V4.1 checkpoint's weights and computes
// its forward pass on a kernels.Backend. Each block lives in its own file and
// follows the equations of the spec: mhc.go (hyper-connections), attention.go,
// compressor.go, indexer.go, moe.go, engram.go; forward.go strings them
// together; state.go holds the per-sequence caches.
package model

import (
	"fmt"
	"math"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Weights is where a model's tensors come from; *checkpoint.Checkpoint is one.
type Weights interface {
	Matrix(base string, rows, cols int) (*kernels.Matrix, error)
	Floats(name string, shape ...int) ([]float32, error)
	Ints(name string, shape ...int) ([]int32, error)
	Has(name string) bool
}

// Numerics selects which of the reference's simulated low-precision steps the
// forward pass reproduces. The official reference applies all of them; the
// transformers V4 port applies none (see docs/numerics.md).
type Numerics struct {
	ActQuant     bool // FP8 block quantisation of activations before FP8/FP4 products
	KVQuant      bool // FP8 (window, V4 compressed) / FP4 (V4.1 compressed) KV simulation
	IndexerQuant bool // FP4 indexer queries and keys (with the V4 Hadamard rotation)
}

// ReferenceNumerics reproduces every simulated low-precision step of the
// official reference; it is the default.
var ReferenceNumerics = Numerics{ActQuant: true, KVQuant: true, IndexerQuant: true}

// Float32Numerics computes every step in float32 without simulated rounding,
// as transformers' DeepSeek-V4 port does.
var Float32Numerics = Numerics{}

// Model is a loaded checkpoint ready to run.
type Model struct {
	Config   checkpoint.Config
	Numerics Numerics
	be       kernels.Backend

	embed  *kernels.Matrix // [V, D], rows read directly
	head   *kernels.Matrix // [V, D]
	norm   []float32
	hcHead *HCHead // V4 only
	layers []*Layer
	mtp    []*MTP // V4 multi-token prediction blocks (loaded and checked, not run)

	ropeMain, ropeCompress *RopeTable

	engramSync bool // Engram rows read when their layer runs, not prefetched
}

// Layer is one decoder block's weights.
type Layer struct {
	Index    int
	Ratio    int // compress ratio: 0 window only, else tokens per compressed entry
	AttnHC   *HCSite
	FFNHC    *HCSite
	AttnNorm []float32
	FFNNorm  []float32
	Attn     *Attention
	MoE      *MoE
	Engram   *Engram // V4.1 Engram layers only
}

// LoadOption adjusts Load.
type LoadOption func(*loadOptions)

type loadOptions struct {
	progress   func(done, total int)
	engramSync bool
}

// WithProgress reports loading progress in layers (done of total).
func WithProgress(f func(done, total int)) LoadOption {
	return func(o *loadOptions) { o.progress = f }
}

// Load reads a model's weights through w and prepares it to run on be.
func Load(cfg checkpoint.Config, w Weights, be kernels.Backend, num Numerics, opts ...LoadOption) (*Model, error) {
	var lo loadOptions
	for _, o := range opts {
		o(&lo)
	}
	m := &Model{Config: cfg, Numerics: num, be: be, engramSync: lo.engramSync}
	D, V := cfg.Dim, cfg.VocabSize
	var err error
	if m.embed, err = w.Matrix("embed", V, D); err != nil {
		return nil, err
	}
	if m.head, err = w.Matrix("head", V, D); err != nil {
		return nil, err
	}
	if m.norm, err = w.Floats("norm.weight", D); err != nil {
		return nil, err
	}
	if cfg.Arch == checkpoint.ArchV4 {
		if m.hcHead, err = loadHCHead(w, "", cfg); err != nil {
			return nil, err
		}
	}
	m.ropeMain = NewRopeTable(cfg.RopeDim, cfg.RopeTheta, nil)
	m.ropeCompress = NewRopeTable(cfg.RopeDim, cfg.CRopeTheta, &Yarn{
		Factor: cfg.RopeFactor, OrigSeqLen: cfg.OrigSeqLen, BetaFast: cfg.BetaFast, BetaSlow: cfg.BetaSlow,
		V41: cfg.Arch == checkpoint.ArchV41,
	})
	for l := 0; l < cfg.Layers; l++ {
		ly, err := loadLayer(w, cfg, l)
		if err != nil {
			return nil, err
		}
		ly.Attn.Rope = m.ropeMain
		if ly.Ratio > 0 {
			ly.Attn.Rope = m.ropeCompress
		}
		m.layers = append(m.layers, ly)
		if lo.progress != nil {
			lo.progress(l+1, cfg.Layers)
		}
	}
	if cfg.Arch == checkpoint.ArchV4 {
		for i := 0; i < cfg.MTPLayers && w.Has(fmt.Sprintf("mtp.%d.e_proj.weight", i)); i++ {
			mt, err := loadMTP(w, cfg, i)
			if err != nil {
				return nil, err
			}
			m.mtp = append(m.mtp, mt)
		}
	}
	return m, nil
}

// MTP is a V4 multi-token prediction block: it combines the main model's
// final streams with the embedding of the next token and runs one more
// window-only block with its own HC head. EdgeSeek loads and checks it so
// speculative decoding can use it; plain decoding does not run it.
type MTP struct {
	Block        *Layer
	EProj, HProj *kernels.Matrix
	ENorm, HNorm []float32
	Norm         []float32
	Head         *HCHead
}

func loadMTP(w Weights, cfg checkpoint.Config, i int) (*MTP, error) {
	p := fmt.Sprintf("mtp.%d.", i)
	blk, err := loadBlock(w, cfg, p, cfg.Layers+i)
	if err != nil {
		return nil, err
	}
	mt := &MTP{Block: blk}
	D := cfg.Dim
	if mt.EProj, err = w.Matrix(p+"e_proj", D, D); err != nil {
		return nil, err
	}
	if mt.HProj, err = w.Matrix(p+"h_proj", D, D); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		dst  *[]float32
		name string
	}{{&mt.ENorm, "enorm.weight"}, {&mt.HNorm, "hnorm.weight"}, {&mt.Norm, "norm.weight"}} {
		if *v.dst, err = w.Floats(p+v.name, D); err != nil {
			return nil, err
		}
	}
	if mt.Head, err = loadHCHead(w, p, cfg); err != nil {
		return nil, err
	}
	return mt, nil
}

// MTPBlocks returns the loaded multi-token prediction blocks.
func (m *Model) MTPBlocks() []*MTP { return m.mtp }

func loadLayer(w Weights, cfg checkpoint.Config, l int) (*Layer, error) {
	return loadBlock(w, cfg, fmt.Sprintf("layers.%d.", l), l)
}

// loadBlock loads a decoder block stored under prefix; l is its index in
// compress_ratios (MTP blocks follow the backbone layers).
func loadBlock(w Weights, cfg checkpoint.Config, p string, l int) (*Layer, error) {
	if l >= len(cfg.CompressRatio) {
		return nil, fmt.Errorf("%s: no compress_ratios entry for block %d", p, l)
	}
	ly := &Layer{Index: l, Ratio: cfg.CompressRatio[l]}
	var err error
	if ly.AttnHC, err = loadHCSite(w, p+"hc_attn", cfg); err != nil {
		return nil, err
	}
	if ly.FFNHC, err = loadHCSite(w, p+"hc_ffn", cfg); err != nil {
		return nil, err
	}
	if ly.AttnNorm, err = w.Floats(p+"attn_norm.weight", cfg.Dim); err != nil {
		return nil, err
	}
	if ly.FFNNorm, err = w.Floats(p+"ffn_norm.weight", cfg.Dim); err != nil {
		return nil, err
	}
	if ly.Attn, err = loadAttention(w, p+"attn.", cfg, l, ly.Ratio); err != nil {
		return nil, err
	}
	if ly.MoE, err = loadMoE(w, p+"ffn.", cfg, l); err != nil {
		return nil, err
	}
	if contains(cfg.EngramLayers, l) {
		if ly.Engram, err = loadEngram(w, p+"engram.", cfg, l); err != nil {
			return nil, err
		}
	}
	return ly, nil
}

// Layers returns the model's decoder blocks.
func (m *Model) Layers() []*Layer { return m.layers }

// Backend returns the backend the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// linear computes y = W·x for n rows of x, first rounding x to FP8 in blocks of
// the trunk's block size when the reference does (ActQuant, FP8 and FP4
// weights only). x is not modified.
func (m *Model) linear(w *kernels.Matrix, x []float32, n int) []float32 {
	y := make([]float32, n*w.Rows)
	m.be.MatMul(y, w, m.linearInput(w, x, n), n)
	return y
}

// linearInput returns what the n rows of x become before a product with w:
// rounded to FP8 in blocks (a copy) when the reference does so (ActQuant
// with an FP8 or FP4 w), x itself otherwise.
func (m *Model) linearInput(w *kernels.Matrix, x []float32, n int) []float32 {
	if !m.Numerics.ActQuant || (w.Format != kernels.FP8 && w.Format != kernels.FP4) {
		return x
	}
	xq := append([]float32(nil), x[:n*w.Cols]...)
	blk := m.Config.FP8Block
	for i := 0; i < n; i++ {
		kernels.QuantDequantFP8(xq[i*w.Cols:(i+1)*w.Cols], blk)
	}
	return xq
}

// rmsnormRows normalises each of the n rows of x (width len(w)) in place.
func rmsnormRows(x []float32, w []float32, eps float32) {
	d := len(w)
	for i := 0; i+d <= len(x); i += d {
		kernels.RMSNorm(x[i:i+d], x[i:i+d], w, eps)
	}
}

func sigmoid(x float32) float32 { return kernels.Sigmoid(x) }

func expf(x float32) float32 { return float32(math.Exp(float64(x))) }
