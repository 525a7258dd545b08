package synth_test

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
	"github.com/edgeseek/edgeseek/model/synth"
)

func TestEngramRows(t *testing.T) {
	// Spec §4.3: the release's sums from vocab 16,000,000, 2 layers, orders 2..4, 8 heads.
	if got := synth.EngramRows(16000000, 2, 4, 8); !slices.Equal(got, []int{384006168, 384016682}) {
		t.Errorf("release rows %v", got)
	}
	// Tiny: primes 53,59 | 61,67 then 71,73 | 79,83.
	if got := synth.EngramRows(50, 2, 3, 2); !slices.Equal(got, []int{53 + 59 + 61 + 67, 71 + 73 + 79 + 83}) {
		t.Errorf("tiny rows %v", got)
	}
}

func TestTinyConfigs(t *testing.T) {
	v4 := synth.TinyConfig(checkpoint.ArchV4)
	if v4.Dim != 64 || v4.Layers != 6 || !slices.Equal(v4.CompressRatio, []int{0, 0, 4, 128, 4, 128, 0}) || v4.HashLayers != 3 ||
		v4.FP8Block != 128 || v4.MoEInter != 32 || v4.Experts != 8 || v4.TopK != 2 || v4.RouteScale != 1.5 || v4.IndexTopK != 8 {
		t.Errorf("v4 %+v", v4)
	}
	v41 := synth.TinyConfig(checkpoint.ArchV41)
	if v41.Layers != 8 || v41.FP8Block != 32 || v41.NormEps != 1e-20 || v41.CandidateSource != 5 || v41.MTPLayers != 3 ||
		!slices.Equal(v41.KVSourceLayers, []int{2, 4, 5}) || !slices.Equal(v41.IndexSourceLayers, []int{2, 4, 5, 7}) ||
		!slices.Equal(v41.EngramLayers, []int{1, 4}) || v41.EngramCompressed != 512 || v41.HashLayers != 0 {
		t.Errorf("v41 %+v", v41)
	}
	for _, c := range []checkpoint.Config{v4, v41} {
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// TestWriteOpenRoundTrip writes each arch in each layout and checks that
// checkpoint.Open returns the config and every tensor unchanged under its
// native name.
func TestWriteOpenRoundTrip(t *testing.T) {
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		for _, layout := range []struct {
			name string
			opts synth.Options
		}{
			{"single", synth.Options{TokenizerJSON: []byte(`{"model":{}}`)}},
			{"sharded", synth.Options{Shards: 2}},
			{"hfnames", synth.Options{HFNames: true}},
		} {
			t.Run(string(arch)+"/"+layout.name, func(t *testing.T) {
				cfg := synth.TinyConfig(arch)
				dir := t.TempDir()
				if err := synth.Write(dir, cfg, 7, layout.opts); err != nil {
					t.Fatal(err)
				}
				checkLayout(t, dir, layout.opts)
				ck, err := checkpoint.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer ck.Close()
				got := *ck.Config
				got.Ignored = nil
				if !reflect.DeepEqual(got, cfg) {
					t.Errorf("config\n got %+v\nwant %+v", got, cfg)
				}
				want, err := synth.Tensors(cfg, 7)
				if err != nil {
					t.Fatal(err)
				}
				if len(ck.Names()) != len(want) {
					t.Errorf("%d tensors, want %d", len(ck.Names()), len(want))
				}
				for _, w := range want {
					g, _, err := ck.Tensor(w.Name)
					if err != nil {
						t.Fatal(err)
					}
					if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || string(g.Data) != string(w.Data) {
						t.Fatalf("%s: %s %v differs from %s %v", w.Name, g.DType, g.Shape, w.DType, w.Shape)
					}
				}
				checkWeights(t, ck)
				sum := ck.Summary()
				if sum.Tensors != len(want) || sum.ByDType[safetensors.F8E8M0].Tensors == 0 {
					t.Errorf("summary %v", sum)
				}
			})
		}
	}
}

func checkLayout(t *testing.T, dir string, o synth.Options) {
	t.Helper()
	_, errIdx := os.Stat(filepath.Join(dir, safetensors.IndexFile))
	if (o.Shards >= 2) != (errIdx == nil) {
		t.Errorf("index present %v with %d shards", errIdx == nil, o.Shards)
	}
	_, errTok := os.Stat(filepath.Join(dir, "tokenizer.json"))
	if (o.TokenizerJSON != nil) != (errTok == nil) {
		t.Errorf("tokenizer.json present %v", errTok == nil)
	}
	s, err := safetensors.OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hf := slices.ContainsFunc(s.Names(), func(n string) bool { return strings.HasPrefix(n, "model.layers.") })
	if hf != o.HFNames {
		t.Errorf("HF names present %v, want %v", hf, o.HFNames)
	}
	if o.HFNames && (slices.ContainsFunc(s.Names(), func(n string) bool { return strings.HasPrefix(n, "model.") && strings.HasSuffix(n, "q_a_proj.scale") }) || !slices.ContainsFunc(s.Names(), func(n string) bool { return strings.HasSuffix(n, ".weight_scale_inv") })) {
		t.Error("HF layout still has native scale names")
	}
	var total int64
	for _, f := range s.Files() {
		st, _ := os.Stat(f.Path)
		total += st.Size()
	}
	if total > 4<<20 {
		t.Errorf("checkpoint is %d bytes; keep it a few MB", total)
	}
}

// checkWeights loads every weight through Matrix/Floats/Ints with shapes
// derived from the config and checks the values are well scaled.
func checkWeights(t *testing.T, ck *checkpoint.Checkpoint) {
	c := ck.Config
	nMat := 0
	for _, n := range ck.Names() {
		base, ok := strings.CutSuffix(n, ".weight")
		if !ok || strings.HasSuffix(base, "engram.embed") {
			continue
		}
		w, _, _ := ck.Tensor(n)
		if len(w.Shape) != 2 || strings.HasSuffix(base, "q_weight") || strings.HasSuffix(base, "k_weight") {
			continue
		}
		rows, cols := w.Shape[0], w.Shape[1]
		if w.DType == safetensors.I8 {
			cols *= 2
		}
		m, err := ck.Matrix(base, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		nMat++
		wantFmt := map[safetensors.DType]kernels.Format{safetensors.BF16: kernels.BF16, safetensors.F8E4M3: kernels.FP8, safetensors.I8: kernels.FP4}[w.DType]
		if m.Format != wantFmt {
			t.Errorf("%s: format %v", base, m.Format)
		}
		if m.Format == kernels.FP8 && m.Block != c.FP8Block {
			t.Errorf("%s: block %d", base, m.Block)
		}
		// Linears have std ~1/sqrt(in): rms·sqrt(cols) near 1. Norm-like
		// and embedding tensors are checked separately.
		if strings.HasSuffix(base, "norm") || base == "embed" {
			continue
		}
		var ss float64
		for r := range rows {
			for cc := range cols {
				v := float64(m.At(r, cc))
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s: non-finite %v", base, v)
				}
				ss += v * v
			}
		}
		if g := math.Sqrt(ss/float64(rows*cols)) * math.Sqrt(float64(cols)); rows*cols >= 256 && (g < 0.6 || g > 1.5) {
			t.Errorf("%s: rms·sqrt(in) = %.3f, want ~1", base, g)
		}
	}
	if nMat < 50 {
		t.Errorf("only %d matrices", nMat)
	}
	nw, err := ck.Floats("norm.weight", c.Dim)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range nw {
		if v < 0.7 || v > 1.3 {
			t.Fatalf("norm weight %v", v)
		}
	}
	if _, err := ck.Floats("layers.0.hc_attn_fn", (2+c.HCMult)*c.HCMult, c.HCMult*c.Dim); err != nil {
		t.Error(err)
	}
	if _, err := ck.Floats("layers.0.attn.attn_sink", c.Heads); err != nil {
		t.Error(err)
	}
	for l := range c.Layers {
		name := "layers." + itoa(l) + ".ffn.gate.tid2eid"
		if l >= c.HashLayers {
			if ck.Has(name) {
				t.Errorf("%s present", name)
			}
			if _, err := ck.Floats("layers."+itoa(l)+".ffn.gate.bias", c.Experts); err != nil {
				t.Error(err)
			}
			continue
		}
		ids, err := ck.Ints(name, c.VocabSize, c.TopK)
		if err != nil {
			t.Fatal(err)
		}
		for v := range c.VocabSize {
			row := ids[v*c.TopK : (v+1)*c.TopK]
			seen := map[int32]bool{}
			for _, e := range row {
				if e < 0 || int(e) >= c.Experts || seen[e] {
					t.Fatalf("%s row %d: %v", name, v, row)
				}
				seen[e] = true
			}
		}
	}
	for i, l := range c.EngramLayers {
		p := "layers." + itoa(l) + ".engram.embed"
		e, _, err := ck.Tensor(p + ".weight")
		if err != nil || !slices.Equal(e.Shape, []int{c.EngramRows[i], c.EngramHeadDim}) {
			t.Errorf("%s: %v %v", p, err, e)
		}
	}
	if c.Arch == checkpoint.ArchV41 && (ck.Has("hc_head_fn") || !ck.Has("mtp.2.markov_head.embed.weight") || ck.Has("layers.5.attn.compressor.wgate.weight") || !ck.Has("layers.4.attn.compressor.wgate.weight")) {
		t.Error("V4.1 layout: hc_head / markov / wgate placement wrong")
	}
	if c.Arch == checkpoint.ArchV4 && (!ck.Has("mtp.0.hc_head_fn") || !ck.Has("mtp.0.e_proj.scale") || !ck.Has("layers.3.attn.compressor.ape") || ck.Has("layers.3.attn.indexer.wq_b.weight")) {
		t.Error("V4 layout: mtp / HCA placement wrong")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestDeterministic(t *testing.T) {
	a, _ := synth.Tensors(synth.TinyConfig(checkpoint.ArchV4), 3)
	b, _ := synth.Tensors(synth.TinyConfig(checkpoint.ArchV4), 3)
	c, _ := synth.Tensors(synth.TinyConfig(checkpoint.ArchV4), 4)
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Error("seeded output is not deterministic per seed")
	}
}
