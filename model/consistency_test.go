package model_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// tinyModel writes a tiny checkpoint of arch and loads it.
func tinyModel(t testing.TB, arch checkpoint.Arch, num model.Numerics, threads int) *model.Model {
	t.Helper()
	dir := t.TempDir()
	if err := synth.Write(dir, synth.TinyConfig(arch), 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(*ck.Config, ck, kernels.NewCPU(threads), num)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randomTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

// engramRows gives every token plausible Engram rows (the addressing itself
// is tested in wasm/engram); the model must treat them the same whichever way
// the sequence is chunked.
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

func forwardChunks(t testing.TB, m *model.Model, toks []int, chunk int) []float32 {
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
	if st.Pos != len(toks) {
		t.Fatalf("state position %d after %d tokens", st.Pos, len(toks))
	}
	return all
}

// maxRelDiff returns max|a−b| / max|b|.
func maxRelDiff(a, b []float32) float64 {
	var d, r float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		r = math.Max(r, math.Abs(float64(b[i])))
	}
	return d / r
}

func TestPrefillChunkedDecodeAgree(t *testing.T) {
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		for _, num := range []struct {
			name string
			n    model.Numerics
		}{{"reference", model.ReferenceNumerics}, {"float32", model.Float32Numerics}} {
			t.Run(string(arch)+"/"+num.name, func(t *testing.T) {
				m := tinyModel(t, arch, num.n, 2)
				toks := randomTokens(300, m.Config.VocabSize, 5)
				full := forwardChunks(t, m, toks, len(toks))
				for _, chunk := range []int{1, 7, 64} {
					got := forwardChunks(t, m, toks, chunk)
					if d := maxRelDiff(got, full); d > 1e-5 {
						t.Errorf("chunk %d: max relative difference %.3g from one-shot prefill", chunk, d)
					}
				}
			})
		}
	}
}

func TestThreadCountDoesNotChangeLogits(t *testing.T) {
	toks := randomTokens(80, 512, 3)
	a := forwardChunks(t, tinyModel(t, checkpoint.ArchV4, model.ReferenceNumerics, 1), toks, 80)
	b := forwardChunks(t, tinyModel(t, checkpoint.ArchV4, model.ReferenceNumerics, 3), toks, 80)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: %v with 1 thread, %v with 3", i, a[i], b[i])
		}
	}
}

// TestReferenceNumericsAreWiredIn checks that the simulated FP8/FP4 steps
// change the logits and keep them finite. Their exact values are checked
// against the independent reference in reference_test.go; the size of the
// change is not bounded here because a random tiny model flips expert and
// indexer choices under small perturbations.
func TestReferenceNumericsAreWiredIn(t *testing.T) {
	toks := randomTokens(120, 512, 4)
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		f32 := forwardChunks(t, tinyModel(t, arch, model.Float32Numerics, 2), toks, 120)
		for _, n := range []model.Numerics{model.ReferenceNumerics, {ActQuant: true}, {KVQuant: true}, {IndexerQuant: true}} {
			ref := forwardChunks(t, tinyModel(t, arch, n, 2), toks, 120)
			for i, v := range ref {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s %+v: logit %d is %v", arch, n, i, v)
				}
			}
			d := maxRelDiff(ref, f32)
			if d < 1e-4 {
				t.Errorf("%s %+v: logits differ from float32 numerics by only %.3g: step not applied", arch, n, d)
			}
			t.Logf("%s %+v vs float32: %.3g relative", arch, n, d)
		}
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	m := tinyModel(t, checkpoint.ArchV4, model.ReferenceNumerics, 1)
	st := m.NewState()
	for _, in := range []model.Input{{}, {Tokens: []int{-1}}, {Tokens: []int{1, 512}}} {
		if _, err := m.Forward(st, in, model.Options{}); err == nil {
			t.Errorf("Forward(%v) accepted", in.Tokens)
		}
	}
	if st.Pos != 0 {
		t.Errorf("rejected input advanced the state to %d", st.Pos)
	}
}

func TestMTPLoads(t *testing.T) {
	m := tinyModel(t, checkpoint.ArchV4, model.ReferenceNumerics, 1)
	if n := len(m.MTPBlocks()); n != 1 {
		t.Fatalf("loaded %d MTP blocks, want 1", n)
	}
	mt := m.MTPBlocks()[0]
	if mt.Block.Ratio != 0 || mt.Block.MoE.Tid2Eid != nil || mt.Block.MoE.Bias == nil {
		t.Errorf("MTP block: ratio %d, hash-routed %v: want a window-only block with a biased gate", mt.Block.Ratio, mt.Block.MoE.Tid2Eid != nil)
	}
	if mt.EProj.Rows != m.Config.Dim || len(mt.Head.Base) != m.Config.HCMult {
		t.Errorf("MTP projections %dx%d, head %d", mt.EProj.Rows, mt.EProj.Cols, len(mt.Head.Base))
	}
}

// TestPlanMatchesState checks the memory plan against the bytes a State
// really holds after n tokens.
func TestPlanMatchesState(t *testing.T) {
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		m := tinyModel(t, arch, model.Float32Numerics, 1)
		p := model.Plan(m.Config)
		st := m.NewState()
		if got, want := st.Bytes(), p.FixedBytes; got != want {
			t.Errorf("%s: empty state holds %d bytes, plan says %d", arch, got, want)
		}
		toks := randomTokens(256, m.Config.VocabSize, 9)
		in := model.Input{Tokens: toks, Engram: engramRows(m, toks)}
		if _, err := m.Forward(st, in, model.Options{}); err != nil {
			t.Fatal(err)
		}
		if got, want := int64(st.Bytes()), p.Bytes(256); got != want {
			t.Errorf("%s: state after 256 tokens holds %d bytes, plan says %d", arch, got, want)
		}
	}
}
