package model_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgeseek/edgeseek/internal/npy"
	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// manifest is the part of testdata/reference/v4/MANIFEST.json the test reads;
// tools/reference/make_fixtures.py writes it.
type manifest struct {
	Checkpoint struct {
		Files map[string]string `json:"files_sha256"`
	} `json:"checkpoint"`
	Sequences []struct {
		Tokens     string `json:"tokens"`
		Logits     string `json:"logits"`
		Picks      string `json:"indexer_picks"`
		PickLayers []int  `json:"indexer_picks_layers"`
		Length     int    `json:"length"`
	} `json:"sequences"`
}

func readNpy(t *testing.T, path string) *npy.Array {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := npy.Read(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return a
}

// TestMatchesTransformers compares every position's logits, and every CSA
// layer's indexer picks, with transformers' DeepSeek-V4 run on the same tiny
// checkpoint in float32. transformers simulates no low precision, so the
// model runs with Float32Numerics (docs/numerics.md).
func TestMatchesTransformers(t *testing.T) {
	const dir = "../testdata/reference/v4"
	raw, err := os.ReadFile(filepath.Join(dir, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	// The checkpoint is regenerated, byte for byte, from its seed.
	ckdir := t.TempDir()
	if err := synth.Write(ckdir, synth.TinyConfig(checkpoint.ArchV4), 1, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile(filepath.Join(ckdir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(st)
	if got, want := hex.EncodeToString(sum[:]), man.Checkpoint.Files["model.safetensors"]; got != want {
		t.Fatalf("synth checkpoint sha256 %s, fixtures were made from %s: regenerate the fixtures (tools/reference/README.md)", got, want)
	}
	ck, err := checkpoint.Open(ckdir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := model.Load(*ck.Config, ck, kernels.NewCPU(2), model.Float32Numerics)
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	for si, seq := range man.Sequences {
		tokA := readNpy(t, filepath.Join(dir, seq.Tokens))
		ref := readNpy(t, filepath.Join(dir, seq.Logits))
		toks := make([]int, len(tokA.Data))
		for i, v := range tokA.Data {
			toks[i] = int(v)
		}
		if len(toks) != seq.Length || len(ref.Data) != len(toks)*V {
			t.Fatalf("seq %d: %d tokens, %d logits", si, len(toks), len(ref.Data))
		}
		tr := &model.Trace{EveryToken: true}
		got, err := m.Forward(m.NewState(), model.Input{Tokens: toks}, model.Options{AllLogits: true, Trace: tr})
		if err != nil {
			t.Fatal(err)
		}
		var maxRef, maxD float64
		worst := 0
		for i, r := range ref.Data {
			maxRef = math.Max(maxRef, math.Abs(r))
			if d := math.Abs(float64(got[i]) - r); d > maxD {
				maxD, worst = d, i
			}
		}
		t.Logf("seq %d (%d tokens): max|ref| %.4g, max|Δ| %.3g at position %d", si, len(toks), maxRef, maxD, worst/V)
		if maxD > 1e-4*maxRef {
			t.Errorf("seq %d: max|Δ| %.3g > 1e-4·max|ref| at position %d", si, maxD, worst/V)
		}
		// Indexer picks: [CSA layers, T, index_topk], ascending, −1 = none.
		picks := readNpy(t, filepath.Join(dir, seq.Picks))
		k := picks.Shape[2]
		for li, layer := range seq.PickLayers {
			for p := 0; p < len(toks); p++ {
				var want []int
				for _, v := range picks.Data[(li*len(toks)+p)*k : (li*len(toks)+p+1)*k] {
					if v >= 0 {
						want = append(want, int(v))
					}
				}
				have := tr.SelectedAll[layer][p]
				if len(have) != len(want) {
					t.Fatalf("seq %d layer %d position %d: picked %v, transformers %v", si, layer, p, have, want)
				}
				for i := range want {
					if have[i] != want[i] {
						t.Fatalf("seq %d layer %d position %d: picked %v, transformers %v", si, layer, p, have, want)
					}
				}
			}
		}
	}
}
