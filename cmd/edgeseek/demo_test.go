package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// demoEval is the part of models/demo/eval.json these tests check against:
// figures tools/train computed with transformers on the dequantized export.
type demoEval struct {
	Quant struct {
		Subset     string  `json:"subset"`
		Perplexity float64 `json:"perplexity_dequantised_export"`
		BPB        float64 `json:"bits_per_byte_dequantised_export"`
	} `json:"quantisation_effect"`
	Sliding struct {
		Window     int     `json:"window"`
		Stride     int     `json:"stride"`
		Perplexity float64 `json:"subset_perplexity_dequantised_export"`
		NonTestBPB float64 `json:"bits_per_byte_non_test"`
	} `json:"sliding_window"`
	Heldout struct {
		NonTestBPB   float64 `json:"bits_per_byte_non_test"`
		NonTestXZBPB float64 `json:"xz_9e_bits_per_byte_non_test"`
	} `json:"heldout"`
	Sample struct {
		PromptIDs []int  `json:"prompt_ids"`
		IDs       []int  `json:"ids"`
		Text      string `json:"completion_text"`
	} `json:"sample"`
}

func openDemo(t *testing.T, num model.Numerics) (*model.Model, *tokenizer.Tokenizer, string, demoEval) {
	t.Helper()
	dir, err := demoModelDir()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(*ck.Config, ck, kernels.NewCPU(0), num)
	if err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tj)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, dir, readDemoEval(t)
}

// readDemoEval reads models/demo/eval.json.
func readDemoEval(t *testing.T) demoEval {
	t.Helper()
	var ev demoEval
	raw, err := os.ReadFile("../../models/demo/eval.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestDemoPerplexityMatchesTransformers scores the committed held-out subset
// (never trained on) and compares with transformers' figure on the same
// dequantized weights: the issue asks for 1%; float32 numerics should agree
// far closer, and the default (simulated FP8 activations) within 1%.
func TestDemoPerplexityMatchesTransformers(t *testing.T) {
	if testing.Short() {
		t.Skip("scores 66K tokens")
	}
	var man struct {
		Files []struct {
			File   string `json:"file"`
			Bytes  int    `json:"bytes"`
			Tokens int    `json:"tokens"`
		} `json:"files"`
	}
	raw, err := os.ReadFile("../../testdata/demo-heldout/MANIFEST.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		num     model.Numerics
		sliding bool // windows of ev.Sliding.Window advancing by ev.Sliding.Stride
		tol     float64
	}{
		{"float32", model.Float32Numerics, false, 1e-3},
		{"float32/sliding", model.Float32Numerics, true, 1e-3},
		{"reference", model.ReferenceNumerics, false, 1e-2},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, tok, dir, ev := openDemo(t, c.num)
			ctx, stride, want := 256, 256, ev.Quant.Perplexity
			if c.sliding {
				ctx, stride, want = ev.Sliding.Window, ev.Sliding.Stride, ev.Sliding.Perplexity
				if stride >= ctx || want == 0 {
					t.Fatalf("eval.json has no sliding-window figure (window %d, stride %d, perplexity %g)", ctx, stride, want)
				}
			}
			var r PerplexityResult
			var all []byte // the subset's files concatenated, for xz
			for _, f := range man.Files {
				text, err := os.ReadFile(filepath.Join("../../testdata/demo-heldout", f.File))
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, text...)
				d, err := perplexity(m, dir, tok, string(text), ctx, stride)
				if err != nil {
					t.Fatal(err)
				}
				if d.Tokens != f.Tokens || d.Bytes != f.Bytes {
					t.Fatalf("%s: %d tokens %d bytes, the tool scored %d and %d", f.File, d.Tokens, d.Bytes, f.Tokens, f.Bytes)
				}
				r.add(d)
			}
			rel := math.Abs(r.Perplexity-want) / want
			t.Logf("%s: perplexity %.4f (transformers %.4f, rel %.2g), bits/byte %.4f", c.name, r.Perplexity, want, rel, r.BitsPerByte)
			if rel > c.tol {
				t.Errorf("perplexity %.4f vs transformers %.4f: relative difference %.3g > %g", r.Perplexity, want, rel, c.tol)
			}
			if c.sliding { // the bar, end to end on these bytes: below xz -9e
				xz := xzBitsPerByte(t, all)
				t.Logf("subset: EdgeSeek %.4f bits/byte, xz -9e %.4f on the same %d bytes", r.BitsPerByte, xz, len(all))
				if r.BitsPerByte >= xz {
					t.Errorf("EdgeSeek %.4f bits/byte, not below xz -9e's %.4f", r.BitsPerByte, xz)
				}
			}
		})
	}
}

// xzBitsPerByte compresses b with xz -9e (the baseline) and returns
// the compressed size in bits per input byte.
func xzBitsPerByte(t *testing.T, b []byte) float64 {
	t.Helper()
	cmd := exec.Command("xz", "-9e", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz -9e (Debian package xz-utils): %v", err)
	}
	return float64(8*len(out)) / float64(len(b))
}

// TestDemoEvalBeatsXZ checks the committed model's figures on all non-test
// held-out files (computed by tools/train/evaluate.py, xz in the same run,
// too long to recompute here): sliding-window bits/byte below xz -9e's.
func TestDemoEvalBeatsXZ(t *testing.T) {
	ev := readDemoEval(t)
	xz, bpb := ev.Heldout.NonTestXZBPB, ev.Sliding.NonTestBPB
	t.Logf("non-test held-out files: model %.4f bits/byte (sliding windows; %.4f non-overlapping), xz -9e %.4f", bpb, ev.Heldout.NonTestBPB, xz)
	if xz == 0 || bpb == 0 || bpb >= xz {
		t.Errorf("eval.json: model %.4f bits/byte, xz -9e %.4f: the model must be below xz", bpb, xz)
	}
}

// TestDemoGreedyCompletion: the fixed prompt completes greedily to the text
// transformers produced on the dequantized model, and the same text on every
// run with the default numerics.
func TestDemoGreedyCompletion(t *testing.T) {
	greedy := func(m *model.Model, prompt []int, n int) []int {
		st := m.NewState()
		ids := append([]int(nil), prompt...)
		logits, err := m.Forward(st, model.Input{Tokens: prompt}, model.Options{})
		for i := 0; i < n; i++ {
			if err != nil {
				t.Fatal(err)
			}
			best := 0
			for j, v := range logits {
				if v > logits[best] {
					best = j
				}
			}
			ids = append(ids, best)
			logits, err = m.Forward(st, model.Input{Tokens: []int{best}}, model.Options{})
		}
		return ids
	}
	m, tok, _, ev := openDemo(t, model.Float32Numerics)
	n := len(ev.Sample.IDs) - len(ev.Sample.PromptIDs)
	got := greedy(m, ev.Sample.PromptIDs, n)
	text, err := tok.Decode(got[len(ev.Sample.PromptIDs):], false)
	if err != nil {
		t.Fatal(err)
	}
	if text != ev.Sample.Text {
		t.Errorf("float32 greedy completion\n%q\ntransformers\n%q", text, ev.Sample.Text)
	}
	mr, _, _, _ := openDemo(t, model.ReferenceNumerics)
	a, b := greedy(mr, ev.Sample.PromptIDs, n), greedy(mr, ev.Sample.PromptIDs, n)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("two greedy runs differ at token %d", i)
		}
	}
	ta, _ := tok.Decode(a[len(ev.Sample.PromptIDs):], false)
	t.Logf("reference numerics completion: %q", ta)
}
