package model_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
	"github.com/edgeseek/edgeseek/model/synth"
)

// TestTransformersFusedExperts loads a checkpoint laid out as transformers
// saves it: routed experts fused into mlp.experts.gate_up_proj [E, 2I, D]
// (w1 then w3) and down_proj [E, D, I], dequantized to bf16 (exact for FP4
// values). The model must compute the same logits as from the FP4 original.
func TestTransformersFusedExperts(t *testing.T) {
	cfg := synth.TinyConfig(checkpoint.ArchV4)
	orig := t.TempDir()
	if err := synth.Write(orig, cfg, 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ts, err := synth.Tensors(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	I, D, E := cfg.MoEInter, cfg.Dim, cfg.Experts
	var out []safetensors.Tensor
	for _, tn := range ts {
		if strings.Contains(tn.Name, ".ffn.experts.") && strings.HasPrefix(tn.Name, "layers.") {
			continue // replaced by the fused tensors below
		}
		out = append(out, tn)
	}
	bf16 := func(m *kernels.Matrix, dst []byte) {
		for r := 0; r < m.Rows; r++ {
			for c := 0; c < m.Cols; c++ {
				binary.LittleEndian.PutUint16(dst[2*(r*m.Cols+c):], kernels.F32ToBF16(m.At(r, c)))
			}
		}
	}
	for l := 0; l < cfg.Layers; l++ {
		gu := make([]byte, 2*E*2*I*D)
		dn := make([]byte, 2*E*D*I)
		for e := 0; e < E; e++ {
			p := fmt.Sprintf("layers.%d.ffn.experts.%d.", l, e)
			w1, err1 := ck.Matrix(p+"w1", I, D)
			w3, err3 := ck.Matrix(p+"w3", I, D)
			w2, err2 := ck.Matrix(p+"w2", D, I)
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatal(err1, err2, err3)
			}
			bf16(w1, gu[2*(e*2*I*D):])
			bf16(w3, gu[2*(e*2*I*D+I*D):])
			bf16(w2, dn[2*(e*D*I):])
		}
		out = append(out,
			safetensors.Tensor{Name: fmt.Sprintf("model.layers.%d.mlp.experts.gate_up_proj", l), DType: safetensors.BF16, Shape: []int{E, 2 * I, D}, Data: gu},
			safetensors.Tensor{Name: fmt.Sprintf("model.layers.%d.mlp.experts.down_proj", l), DType: safetensors.BF16, Shape: []int{E, D, I}, Data: dn})
	}
	fused := t.TempDir()
	if err := safetensors.Write(filepath.Join(fused, "model.safetensors"), out, nil); err != nil {
		t.Fatal(err)
	}
	cj, err := os.ReadFile(filepath.Join(orig, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fused, "config.json"), cj, 0o644)
	fk, err := checkpoint.Open(fused)
	if err != nil {
		t.Fatal(err)
	}
	defer fk.Close()
	w3, err := fk.Matrix("layers.4.ffn.experts.5.w3", I, D)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := ck.Matrix("layers.4.ffn.experts.5.w3", I, D)
	for r := 0; r < I; r++ {
		for c := 0; c < D; c++ {
			if w3.At(r, c) != ref.At(r, c) {
				t.Fatalf("fused w3[%d,%d] = %v, FP4 original %v", r, c, w3.At(r, c), ref.At(r, c))
			}
		}
	}
	toks := randomTokens(40, cfg.VocabSize, 2)
	run := func(c *checkpoint.Checkpoint) []float32 {
		m, err := model.Load(*c.Config, c, kernels.NewCPU(1), model.Float32Numerics)
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.Forward(m.NewState(), model.Input{Tokens: toks}, model.Options{AllLogits: true})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if d := maxRelDiff(run(fk), run(ck)); d > 1e-5 {
		t.Errorf("fused bf16 experts vs FP4 experts: logits differ by %.3g relative", d)
	}
}
