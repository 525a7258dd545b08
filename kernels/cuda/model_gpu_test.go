package cuda_test

import (
	"fmt"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// TestGPUModelLogits runs the tiny synthetic V4 and V4.1 models with the
// CUDA backend (MatMul and Attend on the device) and with the CPU backend,
// and compares every logit of a prefill and of token-by-token decode.
//
// Without the simulated low-precision steps the model is a smooth function of
// the kernels' outputs and the bf16 bound applies. With ReferenceNumerics the
// FP8/FP4 rounding of activations is discontinuous: a last-bit difference at
// a rounding boundary moves one value by a whole e4m3 step, so that case gets
// a 1e-2 bound (and its error is logged either way).
func TestGPUModelLogits(t *testing.T) {
	b := gpu(t)
	for _, c := range []struct {
		arch checkpoint.Arch
		num  model.Numerics
		name string
		tol  float64
	}{
		{checkpoint.ArchV4, model.Numerics{}, "plain", tolBF16},
		{checkpoint.ArchV41, model.Numerics{}, "plain", tolBF16},
		{checkpoint.ArchV4, model.ReferenceNumerics, "reference", 1e-2},
		{checkpoint.ArchV41, model.ReferenceNumerics, "reference", 1e-2},
	} {
		arch := c.arch
		t.Run(fmt.Sprint(arch, "/", c.name), func(t *testing.T) {
			dir := t.TempDir()
			if err := synth.Write(dir, synth.TinyConfig(arch), 1, synth.Options{}); err != nil {
				t.Fatal(err)
			}
			ck, err := checkpoint.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			mc, err := model.Load(*ck.Config, ck, kernels.NewCPU(0), c.num)
			if err != nil {
				t.Fatal(err)
			}
			mg, err := model.Load(*ck.Config, ck, b, c.num)
			if err != nil {
				t.Fatal(err)
			}
			toks := make([]int, 40)
			for i := range toks {
				toks[i] = (i*37 + 11) % ck.Config.VocabSize
			}
			for _, chunk := range []int{len(toks), 1} {
				want := forward(t, mc, toks, chunk)
				got := forward(t, mg, toks, chunk)
				check(t, fmt.Sprintf("%v %s logits, chunks of %d", arch, c.name, chunk), got, want, c.tol)
			}
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func forward(t *testing.T, m *model.Model, toks []int, chunk int) []float32 {
	t.Helper()
	st := m.NewState()
	rows := engramRows(m, toks)
	var all []float32
	for lo := 0; lo < len(toks); lo += chunk {
		hi := min(lo+chunk, len(toks))
		in := model.Input{Tokens: toks[lo:hi]}
		if rows != nil {
			in.Engram = rows[lo:hi]
		}
		l, err := m.Forward(st, in, model.Options{AllLogits: true})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l...)
	}
	return all
}

// engramRows gives every token plausible Engram rows (as model's own tests do).
func engramRows(m *model.Model, toks []int) [][][]int64 {
	cfg := m.Config
	if len(cfg.EngramLayers) == 0 {
		return nil
	}
	cols := (cfg.EngramMaxNgram - 1) * cfg.EngramHeads
	out := make([][][]int64, len(toks))
	for t, tok := range toks {
		out[t] = make([][]int64, len(cfg.EngramLayers))
		for i := range out[t] {
			out[t][i] = make([]int64, cols)
			for c := range out[t][i] {
				out[t][i][c] = int64((tok*131 + c*17 + i*7 + t) % cfg.EngramRows[i])
			}
		}
	}
	return out
}
