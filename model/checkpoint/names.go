package checkpoint

import (
	"strings"
)

// hfLayerNames pairs DeepSeek-native names inside a layer (after
// "layers.N.") with the transformers V4 port's names (spec §7.5). Longer
// native prefixes come first so the most specific rule wins.
var hfLayerNames = [][2]string{
	{"attn.indexer.compressor.wkv", "self_attn.compressor.indexer.kv_proj"},
	{"attn.indexer.compressor.wgate", "self_attn.compressor.indexer.gate_proj"},
	{"attn.indexer.compressor.ape", "self_attn.compressor.indexer.position_bias"},
	{"attn.indexer.compressor.norm", "self_attn.compressor.indexer.kv_norm"},
	{"attn.indexer.weights_proj", "self_attn.compressor.indexer.scorer.weights_proj"},
	{"attn.indexer.wq_b", "self_attn.compressor.indexer.q_b_proj"},
	{"attn.compressor.wkv", "self_attn.compressor.kv_proj"},
	{"attn.compressor.wgate", "self_attn.compressor.gate_proj"},
	{"attn.compressor.ape", "self_attn.compressor.position_bias"},
	{"attn.compressor.norm", "self_attn.compressor.kv_norm"},
	{"attn.wq_a", "self_attn.q_a_proj"},
	{"attn.q_norm", "self_attn.q_a_norm"},
	{"attn.wq_b", "self_attn.q_b_proj"},
	{"attn.wkv", "self_attn.kv_proj"},
	{"attn.kv_norm", "self_attn.kv_norm"},
	{"attn.wo_a", "self_attn.o_a_proj"},
	{"attn.wo_b", "self_attn.o_b_proj"},
	{"attn.attn_sink", "self_attn.sinks"},
	{"attn_norm", "input_layernorm"},
	{"ffn_norm", "post_attention_layernorm"},
	{"hc_attn_fn", "attn_hc.fn"},
	{"hc_attn_base", "attn_hc.base"},
	{"hc_attn_scale", "attn_hc.scale"},
	{"hc_ffn_fn", "ffn_hc.fn"},
	{"hc_ffn_base", "ffn_hc.base"},
	{"hc_ffn_scale", "ffn_hc.scale"},
	{"ffn.gate.bias", "mlp.gate.e_score_correction_bias"},
	{"ffn.gate", "mlp.gate"},
	{"ffn.shared_experts.w1", "mlp.shared_experts.gate_proj"},
	{"ffn.shared_experts.w3", "mlp.shared_experts.up_proj"},
	{"ffn.shared_experts.w2", "mlp.shared_experts.down_proj"},
	{"ffn.experts", "mlp.experts"},
}

// hfExpertNames renames the projections of one routed expert.
var hfExpertNames = [][2]string{{"w1", "gate_proj"}, {"w3", "up_proj"}, {"w2", "down_proj"}}

// hfGlobalNames are the renamed top-level tensors (V4 port, then V4.1 port).
var hfGlobalNames = [][2]string{
	{"embed.weight", "model.embed_tokens.weight"},
	{"head.weight", "lm_head.weight"},
	{"norm.weight", "model.norm.weight"},
	{"hc_head_fn", "model.hc_head.hc_fn"},
	{"hc_head_base", "model.hc_head.hc_base"},
	{"hc_head_scale", "model.hc_head.hc_scale"},
}

// replacePrefix swaps prefix from for to when s starts with from at a dot
// boundary.
func replacePrefix(s, from, to string) (string, bool) {
	if s == from {
		return to, true
	}
	if strings.HasPrefix(s, from+".") {
		return to + s[len(from):], true
	}
	return s, false
}

// splitLayer splits "layers.N.rest" into "layers.N." and "rest".
func splitLayer(name string) (head, rest string, ok bool) {
	if !strings.HasPrefix(name, "layers.") {
		return "", "", false
	}
	i := strings.IndexByte(name[len("layers."):], '.')
	if i <= 0 {
		return "", "", false
	}
	cut := len("layers.") + i + 1
	return name[:cut], name[cut:], true
}

// HFName returns the transformers-style spelling of a native tensor name as
// the transformers port of arch would save it: the V4 port renames modules
// (spec §7.5), the V4.1 port keeps native names under "model."; both spell
// FP8 scales weight_scale_inv. MTP tensors keep their native names (both
// ports ignore them).
func HFName(native string, arch Arch) string {
	if strings.HasPrefix(native, "mtp.") {
		return native
	}
	name := native
	if s, ok := strings.CutSuffix(name, ".scale"); ok && !strings.HasPrefix(name, "hc_") && !strings.Contains(name, ".hc_") {
		name = s + ".weight_scale_inv"
	}
	if arch == ArchV41 {
		switch name {
		case "head.weight":
			return "lm_head.weight"
		}
		return "model." + name
	}
	for _, p := range hfGlobalNames {
		if name == p[0] {
			return p[1]
		}
	}
	head, rest, ok := splitLayer(name)
	if !ok {
		return "model." + name
	}
	for _, p := range hfLayerNames {
		if r, ok := replacePrefix(rest, p[0], p[1]); ok {
			rest = r
			break
		}
	}
	if r, ok := strings.CutPrefix(rest, "mlp.experts."); ok {
		if i := strings.IndexByte(r, '.'); i > 0 {
			e, proj := r[:i+1], r[i+1:]
			for _, p := range hfExpertNames {
				if x, ok := replacePrefix(proj, p[0], p[1]); ok {
					proj = x
					break
				}
			}
			rest = "mlp.experts." + e + proj
		}
	}
	return "model." + head + rest
}

// NativeName maps any accepted spelling (native, transformers V4 port,
// transformers V4.1 port) to the DeepSeek-native name. Native names map to
// themselves.
func NativeName(name string) string {
	if strings.HasPrefix(name, "mtp.") {
		return name
	}
	if s, ok := strings.CutSuffix(name, ".weight_scale_inv"); ok {
		name = s + ".scale"
	}
	for _, p := range hfGlobalNames {
		if name == p[1] {
			return p[0]
		}
	}
	switch name {
	case "model.embed.weight":
		return "embed.weight"
	}
	name = strings.TrimPrefix(name, "model.")
	head, rest, ok := splitLayer(name)
	if !ok {
		return name
	}
	if r, ok := strings.CutPrefix(rest, "mlp.experts."); ok {
		if i := strings.IndexByte(r, '.'); i > 0 {
			e, proj := r[:i+1], r[i+1:]
			for _, p := range hfExpertNames {
				if x, ok := replacePrefix(proj, p[1], p[0]); ok {
					proj = x
					break
				}
			}
			return head + "ffn.experts." + e + proj
		}
	}
	// Longest HF prefix first, so indexer rules beat compressor rules.
	best := -1
	for i, p := range hfLayerNames {
		if _, ok := replacePrefix(rest, p[1], p[0]); ok && (best < 0 || len(p[1]) > len(hfLayerNames[best][1])) {
			best = i
		}
	}
	if best >= 0 {
		rest, _ = replacePrefix(rest, hfLayerNames[best][1], hfLayerNames[best][0])
	}
	return head + rest
}
