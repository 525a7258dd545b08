package checkpoint

import (
	"encoding/json"
	"strconv"
	"strings"
)

// jsonFloat marshals a float with a decimal point or exponent even when it
// is integral (10.0, not 10): transformers' strict config classes reject a
// JSON integer where a float is declared.
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if v := float64(f); v != float64(float32(v)) {
		s = strconv.FormatFloat(v, 'g', -1, 64)
	}
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return []byte(s), nil
}

// HFMap returns the config as the released HF config.json would spell it:
// V4 as one root object with quantization_config inside, V4.1 as a root
// (model_type deepseek_v41) holding text_config and quantization_config.
// Callers may add keys before marshalling.
func (c *Config) HFMap() map[string]any {
	t := map[string]any{
		"hidden_size":              c.Dim,
		"num_hidden_layers":        c.Layers,
		"num_attention_heads":      c.Heads,
		"num_key_value_heads":      1,
		"head_dim":                 c.HeadDim,
		"qk_rope_head_dim":         c.RopeDim,
		"q_lora_rank":              c.QLoraRank,
		"o_groups":                 c.OGroups,
		"o_lora_rank":              c.OLoraRank,
		"sliding_window":           c.Window,
		"vocab_size":               c.VocabSize,
		"rms_norm_eps":             jsonFloat(c.NormEps),
		"rope_theta":               jsonFloat(c.RopeTheta),
		"compress_rope_theta":      jsonFloat(c.CRopeTheta),
		"max_position_embeddings":  c.MaxPositions,
		"compress_ratios":          nonNil(c.CompressRatio),
		"index_n_heads":            c.IndexHeads,
		"index_head_dim":           c.IndexHeadDim,
		"index_topk":               c.IndexTopK,
		"hc_mult":                  c.HCMult,
		"hc_sinkhorn_iters":        c.HCIters,
		"hc_eps":                   jsonFloat(c.HCEps),
		"moe_intermediate_size":    c.MoEInter,
		"n_routed_experts":         c.Experts,
		"num_experts_per_tok":      c.TopK,
		"n_shared_experts":         c.Shared,
		"scoring_func":             "sqrtsoftplus",
		"topk_method":              "noaux_tc",
		"norm_topk_prob":           true,
		"routed_scaling_factor":    jsonFloat(c.RouteScale),
		"swiglu_limit":             jsonFloat(c.SwiGLULimit),
		"num_nextn_predict_layers": c.MTPLayers,
		"bos_token_id":             c.BOS,
		"eos_token_id":             c.EOS,
		"tie_word_embeddings":      false,
	}
	scaling := map[string]any{
		"factor":                           jsonFloat(c.RopeFactor),
		"original_max_position_embeddings": c.OrigSeqLen,
		"beta_fast":                        jsonFloat(c.BetaFast),
		"beta_slow":                        jsonFloat(c.BetaSlow),
	}
	quant := map[string]any{
		"quant_method":      "fp8",
		"activation_scheme": "dynamic",
		"scale_fmt":         "ue8m0",
		"weight_block_size": []int{c.FP8Block, c.FP8Block},
	}
	if c.Arch != ArchV41 {
		t["architectures"] = []string{"DeepseekV4ForCausalLM"}
		t["model_type"] = "deepseek_v4"
		t["num_hash_layers"] = c.HashLayers
		scaling["type"] = "yarn"
		t["rope_scaling"] = scaling
		quant["fmt"] = "e4m3"
		t["quantization_config"] = quant
		if c.ExpertFP4 {
			t["expert_dtype"] = "fp4"
		}
		return t
	}
	t["model_type"] = "deepseek_v41_text"
	scaling["rope_type"] = "yarn"
	t["rope_scaling"] = scaling
	t["gate_temp"] = jsonFloat(c.GateTemp)
	t["kv_source_layer_ids"] = nonNil(c.KVSourceLayers)
	t["index_source_layer_ids"] = nonNil(c.IndexSourceLayers)
	t["candidate_source_layer_id"] = c.CandidateSource
	t["candidate_topk_blocks"] = c.CandidateTopK
	t["candidate_block_size"] = c.CandidateBlock
	t["engram_layer_ids"] = nonNil(c.EngramLayers)
	t["engram_max_ngram_size"] = c.EngramMaxNgram
	t["engram_n_heads"] = c.EngramHeads
	t["engram_head_dim"] = c.EngramHeadDim
	t["engram_vocab_size"] = c.EngramVocab
	t["engram_num_embeddings"] = nonNil(c.EngramRows)
	t["engram_pad_token_id"] = c.EngramPad
	t["engram_compressed_vocab_size"] = c.EngramCompressed
	if c.ExpertFP4 {
		quant["expert_dtype"] = "fp4"
	}
	return map[string]any{
		"architectures":       []string{"DeepseekV41ForCausalLM"},
		"model_type":          "deepseek_v41",
		"text_config":         t,
		"quantization_config": quant,
	}
}

// MarshalHF is json.MarshalIndent of HFMap.
func (c *Config) MarshalHF() ([]byte, error) { return json.MarshalIndent(c.HFMap(), "", "  ") }

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
