package checkpoint_test

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
	"github.com/edgeseek/edgeseek/model/synth"
)

func TestNameMapping(t *testing.T) {
	cases := []struct {
		native, hfV4, hfV41 string
	}{
		{"embed.weight", "model.embed_tokens.weight", "model.embed.weight"},
		{"head.weight", "lm_head.weight", "lm_head.weight"},
		{"norm.weight", "model.norm.weight", "model.norm.weight"},
		{"hc_head_fn", "model.hc_head.hc_fn", "model.hc_head_fn"},
		{"layers.3.attn.wq_a.weight", "model.layers.3.self_attn.q_a_proj.weight", "model.layers.3.attn.wq_a.weight"},
		{"layers.3.attn.wq_a.scale", "model.layers.3.self_attn.q_a_proj.weight_scale_inv", "model.layers.3.attn.wq_a.weight_scale_inv"},
		{"layers.2.attn.indexer.compressor.norm.weight", "model.layers.2.self_attn.compressor.indexer.kv_norm.weight", "model.layers.2.attn.indexer.compressor.norm.weight"},
		{"layers.2.attn.compressor.norm.weight", "model.layers.2.self_attn.compressor.kv_norm.weight", "model.layers.2.attn.compressor.norm.weight"},
		{"layers.2.attn.indexer.weights_proj.weight", "model.layers.2.self_attn.compressor.indexer.scorer.weights_proj.weight", "model.layers.2.attn.indexer.weights_proj.weight"},
		{"layers.0.attn.attn_sink", "model.layers.0.self_attn.sinks", "model.layers.0.attn.attn_sink"},
		{"layers.10.hc_ffn_scale", "model.layers.10.ffn_hc.scale", "model.layers.10.hc_ffn_scale"},
		{"layers.4.ffn.gate.bias", "model.layers.4.mlp.gate.e_score_correction_bias", "model.layers.4.ffn.gate.bias"},
		{"layers.4.ffn.gate.tid2eid", "model.layers.4.mlp.gate.tid2eid", "model.layers.4.ffn.gate.tid2eid"},
		{"layers.4.ffn.experts.17.w2.scale", "model.layers.4.mlp.experts.17.down_proj.weight_scale_inv", "model.layers.4.ffn.experts.17.w2.weight_scale_inv"},
		{"layers.4.ffn.shared_experts.w3.weight", "model.layers.4.mlp.shared_experts.up_proj.weight", "model.layers.4.ffn.shared_experts.w3.weight"},
		{"layers.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight", "model.layers.1.ffn_norm.weight"},
		{"mtp.0.e_proj.scale", "mtp.0.e_proj.scale", "mtp.0.e_proj.scale"},
	}
	for _, c := range cases {
		if g := checkpoint.HFName(c.native, checkpoint.ArchV4); g != c.hfV4 {
			t.Errorf("HFName(%s, v4) = %s, want %s", c.native, g, c.hfV4)
		}
		if g := checkpoint.HFName(c.native, checkpoint.ArchV41); g != c.hfV41 {
			t.Errorf("HFName(%s, v4.1) = %s, want %s", c.native, g, c.hfV41)
		}
		for _, n := range []string{c.native, c.hfV4, c.hfV41} {
			if g := checkpoint.NativeName(n); g != c.native {
				t.Errorf("NativeName(%s) = %s, want %s", n, g, c.native)
			}
		}
	}
}

func tiny(t *testing.T, opts synth.Options) *checkpoint.Checkpoint {
	t.Helper()
	dir := t.TempDir()
	if err := synth.Write(dir, synth.TinyConfig(checkpoint.ArchV4), 1, opts); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func TestMatrixFormats(t *testing.T) {
	ck := tiny(t, synth.Options{})
	c := ck.Config
	cases := []struct {
		base       string
		rows, cols int
		format     kernels.Format
		scales     int
	}{
		{"layers.0.attn.wq_a", c.QLoraRank, c.Dim, kernels.FP8, 1},
		{"layers.0.attn.wq_b", c.Heads * c.HeadDim, c.QLoraRank, kernels.FP8, 4},
		{"layers.0.ffn.experts.3.w1", c.MoEInter, c.Dim, kernels.FP4, c.MoEInter * c.Dim / 32},
		{"layers.0.ffn.experts.3.w2", c.Dim, c.MoEInter, kernels.FP4, c.Dim},
		{"layers.2.attn.compressor.wkv", 2 * c.HeadDim, c.Dim, kernels.BF16, 0},
		{"head", c.VocabSize, c.Dim, kernels.BF16, 0},
	}
	for _, tc := range cases {
		m, err := ck.Matrix(tc.base, tc.rows, tc.cols)
		if err != nil {
			t.Fatal(err)
		}
		if m.Format != tc.format || len(m.Scales) != tc.scales || m.Rows != tc.rows || m.Cols != tc.cols {
			t.Errorf("%s: %v %dx%d with %d scales", tc.base, m.Format, m.Rows, m.Cols, len(m.Scales))
		}
	}
	// FP4 dequantization: low nibble first, value × 2^(scale-127).
	m, _ := ck.Matrix("layers.0.ffn.experts.3.w1", c.MoEInter, c.Dim)
	w, _, _ := ck.Tensor("layers.0.ffn.experts.3.w1.weight")
	s, _, _ := ck.Tensor("layers.0.ffn.experts.3.w1.scale")
	b := w.Data[5]
	sc := float32(math.Ldexp(1, int(s.Data[0])-127))
	if m.At(0, 10) != kernels.FP4Value(b&15)*sc || m.At(0, 11) != kernels.FP4Value(b>>4)*sc {
		t.Errorf("FP4 nibble order: %v %v from byte %#x", m.At(0, 10), m.At(0, 11), b)
	}
}

func TestAccessorErrors(t *testing.T) {
	ck := tiny(t, synth.Options{Shards: 2})
	c := ck.Config
	cases := []struct {
		name string
		call func() error
		want []string
	}{
		{"matrix shape", func() error { _, err := ck.Matrix("layers.0.attn.wq_a", c.QLoraRank+1, c.Dim); return err },
			[]string{`"layers.0.attn.wq_a.weight"`, ".safetensors", "shape"}},
		{"fp4 shape", func() error { _, err := ck.Matrix("layers.0.ffn.experts.0.w1", c.MoEInter, 2*c.Dim); return err },
			[]string{`"layers.0.ffn.experts.0.w1.weight"`, "packed FP4"}},
		{"missing", func() error { _, err := ck.Matrix("layers.99.attn.wq_a", 1, 1); return err },
			[]string{`"layers.99.attn.wq_a.weight"`, "not in the checkpoint"}},
		{"floats dtype", func() error { _, err := ck.Floats("layers.0.attn.wq_a.weight"); return err },
			[]string{`"layers.0.attn.wq_a.weight"`, "F8_E4M3"}},
		{"floats shape", func() error { _, err := ck.Floats("norm.weight", c.Dim+1); return err },
			[]string{`"norm.weight"`, "shape"}},
		{"ints dtype", func() error { _, err := ck.Ints("norm.weight"); return err },
			[]string{`"norm.weight"`, "I64"}},
	}
	for _, tc := range cases {
		err := tc.call()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestMatrixF32Scales(t *testing.T) {
	// weight_scale_inv written as F32 powers of two is accepted.
	dir := t.TempDir()
	cfg := synth.TinyConfig(checkpoint.ArchV4)
	if err := synth.Write(dir, cfg, 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	ts, _ := synth.Tensors(cfg, 1)
	for i := range ts {
		if ts[i].Name == "layers.0.attn.wq_a.scale" {
			f := make([]byte, 4*len(ts[i].Data))
			for j, b := range ts[i].Data {
				binary.LittleEndian.PutUint32(f[4*j:], uint32(b)<<23)
			}
			ts[i].DType, ts[i].Data = safetensors.F32, f
		}
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := ck.Matrix("layers.0.attn.wq_a", cfg.QLoraRank, cfg.Dim)
	if err != nil || m.Format != kernels.FP8 {
		t.Fatalf("%v %v", err, m)
	}
}
