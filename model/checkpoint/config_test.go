package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseReleasedConfigs(t *testing.T) {
	cases := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"v4-flash.json", func(t *testing.T, c *Config) {
			want := Config{Arch: ArchV4, Dim: 4096, Layers: 43, Heads: 64, HeadDim: 512, RopeDim: 64,
				QLoraRank: 1024, OGroups: 8, OLoraRank: 1024, Window: 128, VocabSize: 129280, NormEps: 1e-6,
				RopeTheta: 10000, CRopeTheta: 160000, RopeFactor: 16, OrigSeqLen: 65536, BetaFast: 32, BetaSlow: 1,
				MaxPositions: 1048576, IndexHeads: 64, IndexHeadDim: 128, IndexTopK: 512, HCMult: 4, HCIters: 20,
				HCEps: 1e-6, MoEInter: 2048, Experts: 256, TopK: 6, Shared: 1, HashLayers: 3, RouteScale: 1.5,
				SwiGLULimit: 10, GateTemp: 1, MTPLayers: 1, BOS: 0, EOS: 1, FP8Block: 128, ExpertFP4: true,
				CandidateSource: -1}
			got := *c
			got.CompressRatio, got.Ignored = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if len(c.CompressRatio) != 44 || c.CompressRatio[42] != 4 || c.CompressRatio[43] != 0 || c.CompressRatio[3] != 128 {
				t.Errorf("compress ratios %v", c.CompressRatio)
			}
			if len(c.Ignored) != 0 {
				t.Errorf("ignored %v", c.Ignored)
			}
		}},
		{"v4-pro.json", func(t *testing.T, c *Config) {
			if c.Arch != ArchV4 || c.Dim != 7168 || c.Layers != 61 || c.Heads != 128 || c.QLoraRank != 1536 ||
				c.OGroups != 16 || c.IndexTopK != 1024 || c.MoEInter != 3072 || c.Experts != 384 ||
				c.RouteScale != 2.5 || c.CompressRatio[0] != 128 || len(c.CompressRatio) != 62 {
				t.Errorf("%+v", c)
			}
		}},
		{"v41-flash.json", func(t *testing.T, c *Config) {
			if c.Arch != ArchV41 || c.Dim != 5120 || c.Layers != 40 || c.QLoraRank != 1280 || c.NormEps != 1e-20 ||
				c.FP8Block != 32 || !c.ExpertFP4 || c.HashLayers != 0 || c.MTPLayers != 3 || c.IndexHeads != 32 ||
				c.MoEInter != 2304 || c.GateTemp != 1 || c.EOS != 1 {
				t.Errorf("%+v", c)
			}
			if !slices.Equal(c.KVSourceLayers, []int{2, 8, 14, 20}) || !slices.Equal(c.IndexSourceLayers, []int{2, 8, 14, 20, 24, 28, 32, 36}) ||
				c.CandidateSource != 20 || c.CandidateTopK != 2048 || c.CandidateBlock != 8 {
				t.Errorf("sources %+v", c)
			}
			if !slices.Equal(c.EngramLayers, []int{1, 14}) || c.EngramMaxNgram != 4 || c.EngramHeads != 8 || c.EngramHeadDim != 256 ||
				c.EngramVocab != 16000000 || !slices.Equal(c.EngramRows, []int{384006168, 384016682}) || c.EngramPad != 2 ||
				c.EngramCompressed != 99092 {
				t.Errorf("engram %+v", c)
			}
			for _, k := range []string{"image_token_id", "vision_config", "text_config.dspark_block_size", "text_config.dspark_markov_rank"} {
				if !slices.Contains(c.Ignored, k) {
					t.Errorf("Ignored %v lacks %s", c.Ignored, k)
				}
			}
		}},
		{"inference-v4-flash.json", func(t *testing.T, c *Config) {
			if c.Arch != ArchV4 || c.Dim != 4096 || c.Layers != 43 || c.Heads != 64 || c.MoEInter != 2048 || c.TopK != 6 ||
				c.HashLayers != 3 || c.RouteScale != 1.5 || c.Window != 128 || c.NormEps != 1e-6 || c.OrigSeqLen != 65536 ||
				c.RopeFactor != 16 || c.MaxPositions != 1048576 || c.FP8Block != 128 || !c.ExpertFP4 || c.MTPLayers != 1 {
				t.Errorf("%+v", c)
			}
			if len(c.Ignored) != 0 {
				t.Errorf("ignored %v", c.Ignored)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			c, err := ParseConfig(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			// The HF spelling written back parses to the same values.
			b, err := c.MarshalHF()
			if err != nil {
				t.Fatal(err)
			}
			c2, err := ParseConfig(b)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, b)
			}
			c.Ignored, c2.Ignored = nil, nil
			if !reflect.DeepEqual(c, c2) {
				t.Errorf("round trip:\n%+v\n%+v", c, c2)
			}
		})
	}
}

// mutate parses the V4-Flash (or V4.1) config after applying edit to its
// JSON object.
func mutate(t *testing.T, file string, edit func(m map[string]any)) error {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readTestdata(t, file), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	_, err := ParseConfig(b)
	return err
}

func TestParseConfigErrors(t *testing.T) {
	text := func(m map[string]any) map[string]any { return m["text_config"].(map[string]any) }
	cases := []struct {
		name, file string
		edit       func(m map[string]any)
		field      string
	}{
		{"missing dim", "v4-flash.json", func(m map[string]any) { delete(m, "hidden_size") }, "hidden_size"},
		{"string layers", "v4-flash.json", func(m map[string]any) { m["num_hidden_layers"] = "43" }, "num_hidden_layers"},
		{"float heads", "v4-flash.json", func(m map[string]any) { m["num_attention_heads"] = 6.5 }, "num_attention_heads"},
		{"unknown model", "v4-flash.json", func(m map[string]any) { m["model_type"] = "deepseek_v3" }, "model_type"},
		{"scoring", "v4-flash.json", func(m map[string]any) { m["scoring_func"] = "sigmoid" }, "scoring_func"},
		{"rope type", "v4-flash.json", func(m map[string]any) { m["rope_scaling"].(map[string]any)["type"] = "linear" }, "rope_scaling.type"},
		{"short ratios", "v4-flash.json", func(m map[string]any) { m["compress_ratios"] = []int{0, 0, 4} }, "compress_ratios"},
		{"ratio list type", "v4-flash.json", func(m map[string]any) { m["compress_ratios"] = []any{0, "x"} }, "compress_ratios"},
		{"odd rope", "v4-flash.json", func(m map[string]any) { m["qk_rope_head_dim"] = 63 }, "qk_rope_head_dim"},
		{"rope too wide", "v4-flash.json", func(m map[string]any) { m["qk_rope_head_dim"] = 1024 }, "qk_rope_head_dim"},
		{"groups", "v4-flash.json", func(m map[string]any) { m["o_groups"] = 7 }, "o_groups"},
		{"topk", "v4-flash.json", func(m map[string]any) { m["num_experts_per_tok"] = 300 }, "num_experts_per_tok"},
		{"fp4 width", "v4-flash.json", func(m map[string]any) { m["moe_intermediate_size"] = 2050 }, "moe_intermediate_size"},
		{"block", "v4-flash.json", func(m map[string]any) {
			m["quantization_config"].(map[string]any)["weight_block_size"] = []int{128, 64}
		}, "quantization_config.weight_block_size"},
		{"expert dtype", "v4-flash.json", func(m map[string]any) { m["expert_dtype"] = "int3" }, "expert_dtype"},
		{"no indexer", "v4-flash.json", func(m map[string]any) { delete(m, "index_n_heads") }, "index_n_heads"},
		{"eps type", "v4-flash.json", func(m map[string]any) { m["rms_norm_eps"] = "tiny" }, "rms_norm_eps"},
		{"v41 kv source", "v41-flash.json", func(m map[string]any) { text(m)["kv_source_layer_ids"] = []int{0, 8} }, "kv_source_layer_ids"},
		{"v41 candidate", "v41-flash.json", func(m map[string]any) { text(m)["candidate_source_layer_id"] = 21 }, "candidate_source_layer_id"},
		{"v41 engram rows", "v41-flash.json", func(m map[string]any) { text(m)["engram_num_embeddings"] = []int{5} }, "engram_num_embeddings"},
		{"v41 text type", "v41-flash.json", func(m map[string]any) { text(m)["model_type"] = "llama" }, "text_config.model_type"},
		{"v41 nested missing", "v41-flash.json", func(m map[string]any) { delete(text(m), "q_lora_rank") }, "text_config.q_lora_rank"},
		{"v41 root quant", "v41-flash.json", func(m map[string]any) {
			m["quantization_config"].(map[string]any)["quant_method"] = "gptq"
		}, "quantization_config.quant_method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := mutate(t, tc.file, tc.edit)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), `"`+tc.field+`"`) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
		})
	}
	for _, bad := range []string{``, `null`, `[]`, `{"a":1} x`, `{}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseConfigDefaultsAndIgnored(t *testing.T) {
	var m map[string]any
	json.Unmarshal(readTestdata(t, "v4-flash.json"), &m)
	for _, k := range []string{"sliding_window", "hc_mult", "hc_sinkhorn_iters", "rope_scaling", "quantization_config", "expert_dtype"} {
		delete(m, k)
	}
	m["some_future_key"] = 1
	b, _ := json.Marshal(m)
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Window != 128 || c.HCMult != 4 || c.HCIters != 20 || c.RopeFactor != 16 || c.FP8Block != 128 || c.ExpertFP4 || c.GateTemp != 1 || c.CandidateSource != -1 {
		t.Errorf("defaults %+v", c)
	}
	if !slices.Equal(c.Ignored, []string{"some_future_key"}) {
		t.Errorf("ignored %v", c.Ignored)
	}
}

func TestLoadConfigInferenceFallback(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "inference"), 0o755)
	os.WriteFile(filepath.Join(dir, "inference", "config.json"), readTestdata(t, "inference-v4-flash.json"), 0o644)
	c, err := LoadConfig(dir)
	if err != nil || c.Dim != 4096 {
		t.Fatalf("%v %+v", err, c)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"deepseek_v4"}`), 0o644)
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("broken root config: %v", err)
	}
	if _, err := LoadConfig(t.TempDir()); err == nil {
		t.Error("empty dir accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, n := range []string{"v4-flash.json", "v4-pro.json", "v41-flash.json", "inference-v4-flash.json"} {
		f.Add(readTestdata(f, n))
	}
	f.Add([]byte(`{"model_type":"deepseek_v41","text_config":{"hidden_size":1e400}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// Whatever is accepted must be internally consistent.
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		if len(c.CompressRatio) < c.Layers || c.Heads%c.OGroups != 0 {
			t.Fatalf("inconsistent accepted config %+v", c)
		}
	})
}
