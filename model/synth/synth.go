// Package synth writes tiny random checkpoints in the exact released layout
// (names, dtypes, quantization, config spelling) of DeepSeek-V4 and V4.1, for
// tests and `edgeseek mkmodel`. Weights are random but scaled so activations
// neither saturate nor vanish through the layers.
package synth

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

// Options tune Write.
type Options struct {
	// Shards is the number of safetensors files: 0 or 1 writes
	// model.safetensors, 2 or more writes model-0000i-of-0000n files plus
	// model.safetensors.index.json.
	Shards int
	// HFNames writes transformers-style names instead of native ones.
	HFNames bool
	// TokenizerJSON, when non-nil, is written as tokenizer.json.
	TokenizerJSON []byte
}

// DSparkRank is the Markov-head rank of the tiny V4.1 draft stages.
const DSparkRank = 16

// TinyConfig returns the tiny hyperparameters of arch (see the package tests
// for the exact values); callers may override fields (e.g. VocabSize) before
// Write.
func TinyConfig(arch checkpoint.Arch) checkpoint.Config {
	c := checkpoint.Config{
		Arch: arch, Dim: 64, Heads: 4, HeadDim: 128, RopeDim: 64, QLoraRank: 32,
		OGroups: 2, OLoraRank: 32, Window: 16, VocabSize: 512, NormEps: 1e-6,
		RopeTheta: 10000, CRopeTheta: 160000, RopeFactor: 16, OrigSeqLen: 65536,
		BetaFast: 32, BetaSlow: 1, MaxPositions: 65536 * 16,
		IndexHeads: 4, IndexHeadDim: 128, IndexTopK: 8,
		HCMult: 4, HCIters: 20, HCEps: 1e-6, MoEInter: 32, Experts: 8, TopK: 2, Shared: 1,
		RouteScale: 1.5, SwiGLULimit: 10, GateTemp: 1, BOS: 0, EOS: 1,
		FP8Block: 128, ExpertFP4: true, CandidateSource: -1,
	}
	if arch == checkpoint.ArchV41 {
		c.Layers = 8
		c.CompressRatio = []int{0, 0, 2, 2, 2, 1, 1, 1, 0, 0, 0}
		c.MTPLayers = 3
		c.NormEps = 1e-20
		c.FP8Block = 32
		c.KVSourceLayers = []int{2, 4, 5}
		c.IndexSourceLayers = []int{2, 4, 5, 7}
		c.CandidateSource, c.CandidateTopK, c.CandidateBlock = 5, 4, 4
		c.EngramLayers = []int{1, 4}
		c.EngramHeads, c.EngramHeadDim, c.EngramMaxNgram = 2, 32, 3
		c.EngramVocab, c.EngramPad = 50, 2
		c.EngramCompressed = c.VocabSize
		c.EngramRows = EngramRows(c.EngramVocab, len(c.EngramLayers), c.EngramMaxNgram, c.EngramHeads)
		return c
	}
	c.Layers = 6
	c.CompressRatio = []int{0, 0, 4, 128, 4, 128, 0}
	c.MTPLayers = 1
	c.HashLayers = 3
	return c
}

// EngramRows computes engram_num_embeddings as spec §4.3 does: for each
// layer, for each n-gram order 2..maxNgram, take the next `heads` primes at
// or above vocab that no earlier column used; a layer's rows are the sum of
// its primes.
func EngramRows(vocab, layers, maxNgram, heads int) []int {
	rows := make([]int, layers)
	p := vocab - 1
	for l := range rows {
		for range (maxNgram - 1) * heads {
			p++
			for !isPrime(p) {
				p++
			}
			rows[l] += p
		}
	}
	return rows
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// gen accumulates tensors with a deterministic random source.
type gen struct {
	rng *rand.Rand
	cfg *checkpoint.Config
	ts  []safetensors.Tensor
}

func (g *gen) add(name string, dt safetensors.DType, shape []int, data []byte) {
	g.ts = append(g.ts, safetensors.Tensor{Name: name, DType: dt, Shape: shape, Data: data})
}

func (g *gen) normal(n int, std, mean float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(mean + std*g.rng.NormFloat64())
	}
	return x
}

func (g *gen) f32(name string, std, mean float64, shape ...int) {
	x := g.normal(prod(shape), std, mean)
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	g.add(name, safetensors.F32, shape, b)
}

func (g *gen) bf16(name string, std, mean float64, shape ...int) {
	x := g.normal(prod(shape), std, mean)
	b := make([]byte, 2*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint16(b[2*i:], kernels.F32ToBF16(v))
	}
	g.add(name, safetensors.BF16, shape, b)
}

// linearBF16 writes a plain [out, in] weight with std 1/sqrt(in).
func (g *gen) linearBF16(base string, out, in int) {
	g.bf16(base+".weight", 1/math.Sqrt(float64(in)), 0, out, in)
}

// norm writes an RMSNorm weight near 1.
func (g *gen) norm(base string, n int) { g.bf16(base+".weight", 0.05, 1, n) }

// e8m0For returns the power-of-two scale 2^ceil(log2(amax/max)) and its
// e8m0 byte, so the block's largest value lands just inside the format.
func e8m0For(amax, top float32) (float32, byte) {
	if amax == 0 {
		return 1, 127
	}
	e := int(math.Ceil(math.Log2(float64(amax / top))))
	e = min(max(e, -127), 127)
	return float32(math.Ldexp(1, e)), byte(e + 127)
}

// fp8 writes an F8_E4M3 [out, in] weight, std stdv, with e8m0 scales per
// square block of edge `block` (rows and columns of the scale grid rounded
// up).
func (g *gen) fp8(base string, out, in, block int, stdv float64) {
	x := g.normal(out*in, stdv, 0)
	br, bc := ceilDiv(out, block), ceilDiv(in, block)
	q := make([]byte, out*in)
	sc := make([]byte, br*bc)
	for bi := range br {
		for bj := range bc {
			var amax float32
			for r := bi * block; r < min(out, (bi+1)*block); r++ {
				for c := bj * block; c < min(in, (bj+1)*block); c++ {
					amax = max(amax, abs32(x[r*in+c]))
				}
			}
			s, b := e8m0For(amax, 448)
			sc[bi*bc+bj] = b
			for r := bi * block; r < min(out, (bi+1)*block); r++ {
				for c := bj * block; c < min(in, (bj+1)*block); c++ {
					q[r*in+c] = kernels.F32ToE4M3(x[r*in+c] / s)
				}
			}
		}
	}
	g.add(base+".weight", safetensors.F8E4M3, []int{out, in}, q)
	g.add(base+".scale", safetensors.F8E8M0, []int{br, bc}, sc)
}

// fp8Linear is an FP8 linear with the trunk's block and std 1/sqrt(in).
func (g *gen) fp8Linear(base string, out, in int) {
	g.fp8(base, out, in, g.cfg.FP8Block, 1/math.Sqrt(float64(in)))
}

// fp8Rows writes an FP8 table whose scales are per row and per 32 columns
// (the Engram embedding layout, spec §4.4).
func (g *gen) fp8Rows(base string, rows, cols int, stdv float64) {
	x := g.normal(rows*cols, stdv, 0)
	q := make([]byte, rows*cols)
	sc := make([]byte, rows*cols/32)
	for i := range sc {
		var amax float32
		for _, v := range x[i*32 : i*32+32] {
			amax = max(amax, abs32(v))
		}
		s, b := e8m0For(amax, 448)
		sc[i] = b
		for j := i * 32; j < i*32+32; j++ {
			q[j] = kernels.F32ToE4M3(x[j] / s)
		}
	}
	g.add(base+".weight", safetensors.F8E4M3, []int{rows, cols}, q)
	g.add(base+".scale", safetensors.F8E8M0, []int{rows, cols / 32}, sc)
}

// fp4Codes maps |v| ∈ {0,0.5,1,1.5,2,3,4,6} to its e2m1 code.
var fp4Codes = map[float32]byte{0: 0, 0.5: 1, 1: 2, 1.5: 3, 2: 4, 3: 5, 4: 6, 6: 7}

// fp4 writes a packed FP4 expert weight: I8 [out, in/2], low nibble first,
// and F8_E8M0 scales [out, in/32].
func (g *gen) fp4(base string, out, in int) {
	x := g.normal(out*in, 1/math.Sqrt(float64(in)), 0)
	q := make([]byte, out*in/2)
	sc := make([]byte, out*in/32)
	for gi := range sc {
		blk := x[gi*32 : gi*32+32]
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v))
		}
		s, b := e8m0For(amax, 6)
		sc[gi] = b
		for j, v := range blk {
			r := kernels.RoundE2M1(v / s)
			code := fp4Codes[abs32(r)]
			if r < 0 {
				code |= 8
			}
			i := gi*32 + j
			q[i/2] |= code << (4 * (i % 2))
		}
	}
	g.add(base+".weight", safetensors.I8, []int{out, in / 2}, q)
	g.add(base+".scale", safetensors.F8E8M0, []int{out, in / 32}, sc)
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// hc writes one mHC site's parameters: small mixing projections and biases,
// scales near 1, so the Sinkhorn input starts near uniform.
func (g *gen) hc(p, site string) {
	c := g.cfg
	n := c.HCMult
	g.f32(p+"hc_"+site+"_fn", 0.02, 0, (2+n)*n, n*c.Dim)
	g.f32(p+"hc_"+site+"_base", 0.02, 0, (2+n)*n)
	g.f32(p+"hc_"+site+"_scale", 0.05, 1, 3)
}

func (g *gen) hcHead(p string) {
	c := g.cfg
	g.f32(p+"hc_head_fn", 0.02, 0, c.HCMult, c.HCMult*c.Dim)
	g.f32(p+"hc_head_base", 0.02, 0, c.HCMult)
	g.f32(p+"hc_head_scale", 0.05, 1, 1)
}

// attention writes the per-layer attention tensors for compress ratio m.
func (g *gen) attention(p string, layer, m int) {
	c := g.cfg
	a := p + "attn."
	g.fp8Linear(a+"wq_a", c.QLoraRank, c.Dim)
	g.norm(a+"q_norm", c.QLoraRank)
	g.fp8Linear(a+"wq_b", c.Heads*c.HeadDim, c.QLoraRank)
	g.fp8Linear(a+"wkv", c.HeadDim, c.Dim)
	g.norm(a+"kv_norm", c.HeadDim)
	g.fp8Linear(a+"wo_a", c.OGroups*c.OLoraRank, c.Heads*c.HeadDim/c.OGroups)
	g.fp8Linear(a+"wo_b", c.Dim, c.OGroups*c.OLoraRank)
	g.f32(a+"attn_sink", 0.1, 0, c.Heads)
	if layer < 0 || m == 0 {
		return
	}
	if c.Arch == checkpoint.ArchV41 {
		if contains(c.KVSourceLayers, layer) {
			g.norm(a+"compressor.norm", c.HeadDim)
			g.linearBF16(a+"compressor.wkv", c.HeadDim, c.Dim)
			if m > 1 {
				g.linearBF16(a+"compressor.wgate", c.HeadDim, c.Dim)
			}
			g.linearBF16(a+"indexer.wk", c.IndexHeadDim, c.HeadDim)
			g.norm(a+"indexer.k_norm", c.IndexHeadDim)
		}
		if contains(c.IndexSourceLayers, layer) {
			g.fp8Linear(a+"indexer.wq_b", c.IndexHeads*c.IndexHeadDim, c.QLoraRank)
			g.linearBF16(a+"indexer.weights_proj", c.IndexHeads, c.Dim)
		}
		return
	}
	cm := 1
	if m == 4 {
		cm = 2 // overlapping CSA windows carry two halves
	}
	g.linearBF16(a+"compressor.wkv", cm*c.HeadDim, c.Dim)
	g.linearBF16(a+"compressor.wgate", cm*c.HeadDim, c.Dim)
	g.f32(a+"compressor.ape", 0.1, 0, m, cm*c.HeadDim)
	g.norm(a+"compressor.norm", c.HeadDim)
	if m == 4 {
		g.fp8Linear(a+"indexer.wq_b", c.IndexHeads*c.IndexHeadDim, c.QLoraRank)
		g.linearBF16(a+"indexer.weights_proj", c.IndexHeads, c.Dim)
		g.linearBF16(a+"indexer.compressor.wkv", 2*c.IndexHeadDim, c.Dim)
		g.linearBF16(a+"indexer.compressor.wgate", 2*c.IndexHeadDim, c.Dim)
		g.f32(a+"indexer.compressor.ape", 0.1, 0, 4, 2*c.IndexHeadDim)
		g.norm(a+"indexer.compressor.norm", c.IndexHeadDim)
	}
}

// ffn writes the MoE: router, routed FP4 experts, shared FP8 experts.
func (g *gen) ffn(p string, hash bool) {
	c := g.cfg
	f := p + "ffn."
	g.linearBF16(f+"gate", c.Experts, c.Dim)
	if hash {
		ids := make([]byte, 8*c.VocabSize*c.TopK)
		for v := range c.VocabSize {
			for k, e := range g.rng.Perm(c.Experts)[:c.TopK] {
				binary.LittleEndian.PutUint64(ids[8*(v*c.TopK+k):], uint64(e))
			}
		}
		g.add(f+"gate.tid2eid", safetensors.I64, []int{c.VocabSize, c.TopK}, ids)
	} else {
		g.f32(f+"gate.bias", 0.01, 0, c.Experts)
		if c.Arch == checkpoint.ArchV41 {
			g.f32(f+"gate.bias_vl", 0.01, 0, c.Experts)
		}
	}
	for e := range c.Experts {
		x := fmt.Sprintf("%sexperts.%d.", f, e)
		if c.ExpertFP4 {
			g.fp4(x+"w1", c.MoEInter, c.Dim)
			g.fp4(x+"w3", c.MoEInter, c.Dim)
			g.fp4(x+"w2", c.Dim, c.MoEInter)
		} else {
			g.fp8Linear(x+"w1", c.MoEInter, c.Dim)
			g.fp8Linear(x+"w3", c.MoEInter, c.Dim)
			g.fp8Linear(x+"w2", c.Dim, c.MoEInter)
		}
	}
	if c.Shared > 0 {
		g.fp8Linear(f+"shared_experts.w1", c.Shared*c.MoEInter, c.Dim)
		g.fp8Linear(f+"shared_experts.w3", c.Shared*c.MoEInter, c.Dim)
		g.fp8Linear(f+"shared_experts.w2", c.Dim, c.Shared*c.MoEInter)
	}
}

// block writes one decoder block (backbone layer, or MTP stage with layer<0).
func (g *gen) block(p string, layer, ratio int, hash bool) {
	c := g.cfg
	g.norm(p+"attn_norm", c.Dim)
	g.norm(p+"ffn_norm", c.Dim)
	g.hc(p, "attn")
	g.hc(p, "ffn")
	g.attention(p, layer, ratio)
	g.ffn(p, hash)
}

func (g *gen) engram(p string, rows int) {
	c := g.cfg
	cols := (c.EngramMaxNgram - 1) * c.EngramHeads
	g.fp8Rows(p+"engram.embed", rows, c.EngramHeadDim, 1)
	g.fp8Linear(p+"engram.wkv", c.Dim*(c.HCMult+1), cols*c.EngramHeadDim)
	g.bf16(p+"engram.q_weight", 0.05, 1, c.HCMult, c.Dim)
	g.bf16(p+"engram.k_weight", 0.05, 1, c.HCMult, c.Dim)
}

// Tensors returns every tensor of the tiny checkpoint under native names.
func Tensors(cfg checkpoint.Config, seed int64) ([]safetensors.Tensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.CompressRatio) < cfg.Layers+cfg.MTPLayers {
		return nil, fmt.Errorf("synth: compress_ratios has %d entries, need layers+MTP = %d", len(cfg.CompressRatio), cfg.Layers+cfg.MTPLayers)
	}
	g := &gen{rng: rand.New(rand.NewSource(seed)), cfg: &cfg}
	c := &cfg
	g.bf16("embed.weight", 1, 0, c.VocabSize, c.Dim)
	g.linearBF16("head", c.VocabSize, c.Dim)
	g.norm("norm", c.Dim)
	if c.Arch == checkpoint.ArchV4 {
		g.hcHead("")
	} else {
		for _, n := range []string{"image_start", "image_end", "image_newline"} {
			g.bf16(n, 1, 0, c.Dim)
		}
	}
	for l := range c.Layers {
		p := fmt.Sprintf("layers.%d.", l)
		g.block(p, l, c.CompressRatio[l], c.Arch == checkpoint.ArchV4 && l < c.HashLayers)
		if i := index(c.EngramLayers, l); c.Arch == checkpoint.ArchV41 && i >= 0 {
			g.engram(p, c.EngramRows[i])
		}
	}
	for s := range c.MTPLayers {
		p := fmt.Sprintf("mtp.%d.", s)
		g.block(p, -1, c.CompressRatio[c.Layers+s], false)
		if c.Arch == checkpoint.ArchV4 {
			g.fp8Linear(p+"e_proj", c.Dim, c.Dim)
			g.fp8Linear(p+"h_proj", c.Dim, c.Dim)
			g.norm(p+"enorm", c.Dim)
			g.norm(p+"hnorm", c.Dim)
			g.norm(p+"norm", c.Dim)
			g.hcHead(p)
			continue
		}
		// DSpark stages (V4.1): they must merely load.
		if s == 0 {
			g.fp8Linear(p+"main_proj", c.Dim, 3*c.Dim)
			g.norm(p+"main_norm", c.Dim)
		}
		if s == c.MTPLayers-1 {
			g.norm(p+"norm", c.Dim)
			g.linearBF16(p+"markov_head.embed", c.VocabSize, DSparkRank)
			g.linearBF16(p+"markov_head.head", c.VocabSize, DSparkRank)
			g.linearBF16(p+"confidence_head.proj", 1, c.Dim+DSparkRank)
		}
	}
	return g.ts, nil
}

func contains(s []int, v int) bool { return index(s, v) >= 0 }

func index(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Write creates dir and writes config.json (HF spelling), the safetensors
// file(s) and, when given, tokenizer.json.
func Write(dir string, cfg checkpoint.Config, seed int64, opts Options) error {
	ts, err := Tensors(cfg, seed)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if opts.HFNames {
		for i := range ts {
			ts[i].Name = checkpoint.HFName(ts[i].Name, cfg.Arch)
		}
	}
	m := cfg.HFMap()
	if cfg.Arch == checkpoint.ArchV41 {
		// DSpark keys of the release; the runtime does not read them yet.
		m["text_config"].(map[string]any)["dspark_markov_rank"] = DSparkRank
		m["text_config"].(map[string]any)["dspark_block_size"] = 5
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if opts.TokenizerJSON != nil {
		if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), opts.TokenizerJSON, 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	md := map[string]string{"format": "pt"}
	if opts.Shards <= 1 {
		return safetensors.Write(filepath.Join(dir, safetensors.SingleFile), ts, md)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	wm := map[string]string{}
	var total int64
	per := ceilDiv(len(ts), opts.Shards)
	for s := range opts.Shards {
		part := ts[min(s*per, len(ts)):min((s+1)*per, len(ts))]
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, opts.Shards)
		if err := safetensors.Write(filepath.Join(dir, name), part, md); err != nil {
			return err
		}
		for _, t := range part {
			wm[t.Name] = name
			total += int64(len(t.Data))
		}
	}
	return safetensors.WriteIndex(dir, wm, total)
}
