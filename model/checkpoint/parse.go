package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// ConfigError names the config field that is missing, mistyped or
// inconsistent.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("config: field %q: %v", e.Field, e.Err) }

func (e *ConfigError) Unwrap() error { return e.Err }

// obj reads typed fields out of one JSON object, remembering which keys were
// used so the rest can be reported, and keeping the first error.
type obj struct {
	prefix string // "text_config." for the nested V4.1 object
	m      map[string]any
	used   map[string]bool
	err    error
}

func newObj(prefix string, m map[string]any) *obj {
	return &obj{prefix: prefix, m: m, used: map[string]bool{}}
}

func (o *obj) fail(key string, format string, args ...any) {
	if o.err == nil {
		o.err = &ConfigError{Field: o.prefix + key, Err: fmt.Errorf(format, args...)}
	}
}

// get returns the first present key among the spellings (null counts as
// absent) and marks every spelling used.
func (o *obj) get(keys ...string) (string, any, bool) {
	for _, k := range keys {
		o.used[k] = true
	}
	for _, k := range keys {
		if v, ok := o.m[k]; ok && v != nil {
			return k, v, true
		}
	}
	return keys[0], nil, false
}

func (o *obj) has(keys ...string) bool {
	for _, k := range keys {
		if v, ok := o.m[k]; ok && v != nil {
			return true
		}
	}
	return false
}

func asInt(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil && i >= math.MinInt32 && i <= math.MaxInt32*1024 {
		return int(i), true
	}
	// Tolerate integral floats such as 4096.0 that some exporters write.
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<40 {
		return 0, false
	}
	return int(f), true
}

func (o *obj) intv(required bool, def int, keys ...string) int {
	k, v, ok := o.get(keys...)
	if !ok {
		if required {
			o.fail(k, "missing")
		}
		return def
	}
	i, ok := asInt(v)
	if !ok {
		o.fail(k, "want an integer, got %v", v)
		return def
	}
	return i
}

func (o *obj) floatv(def float64, keys ...string) float64 {
	k, v, ok := o.get(keys...)
	if !ok {
		return def
	}
	n, ok := v.(json.Number)
	if !ok {
		o.fail(k, "want a number, got %v", v)
		return def
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		o.fail(k, "want a finite number, got %v", v)
		return def
	}
	return f
}

func (o *obj) str(def string, keys ...string) string {
	k, v, ok := o.get(keys...)
	if !ok {
		return def
	}
	s, ok := v.(string)
	if !ok {
		o.fail(k, "want a string, got %v", v)
		return def
	}
	return s
}

func (o *obj) ints(required bool, keys ...string) []int {
	k, v, ok := o.get(keys...)
	if !ok {
		if required {
			o.fail(k, "missing")
		}
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		o.fail(k, "want a list of integers, got %v", v)
		return nil
	}
	out := make([]int, len(a))
	for i, x := range a {
		n, ok := asInt(x)
		if !ok {
			o.fail(k, "element %d: want an integer, got %v", i, x)
			return nil
		}
		out[i] = n
	}
	return out
}

func (o *obj) object(key string) (*obj, bool) {
	_, v, ok := o.get(key)
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		o.fail(key, "want an object, got %v", v)
		return nil, false
	}
	return newObj(o.prefix+key+".", m), true
}

// ignored lists the keys of o (and of nested objects that were read) that
// were never consulted.
func (o *obj) ignored() []string {
	var out []string
	for k := range o.m {
		if !o.used[k] {
			out = append(out, o.prefix+k)
		}
	}
	return out
}

// knownUnused are keys of the released configs that carry no information the
// runtime needs (or that it fixes itself); reading them keeps Ignored short
// and meaningful.
var knownUnused = []string{
	"architectures", "model_type", "torch_dtype", "dtype", "transformers_version",
	"tie_word_embeddings", "num_key_value_heads", "topk_method", "norm_topk_prob",
	"use_cache", "initializer_range", "attention_bias", "attention_dropout",
	"hidden_act", "auto_map", "partial_rotary_factor", "max_batch_size", "max_seq_len",
	"scale_fmt", "scale_dtype", "pad_token_id", "layer_types", "compress_rates",
	"n_group", "topk_group", "first_k_dense_replace", "rope_parameters",
}

// LoadConfig reads dir/config.json, or dir/inference/config.json when the
// root one is absent.
func LoadConfig(dir string) (*Config, error) {
	var lastErr error
	for _, p := range []string{filepath.Join(dir, "config.json"), filepath.Join(dir, "inference", "config.json")} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %w", err)
		}
		c, err := ParseConfig(b)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: %s: %w", p, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("checkpoint: %s: no config.json or inference/config.json: %w", dir, lastErr)
}

// ParseConfig normalises any accepted config.json spelling: the HF root
// config of V4-Flash/Pro (model_type deepseek_v4), V4.1's root config with a
// nested text_config and a root quantization_config (deepseek_v41), and the
// reference's inference/config.json key names (dim, n_layers, …).
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("config: not a JSON object: %w", err)
	}
	if root == nil {
		return nil, errors.New("config: not a JSON object: null")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("config: trailing data after the JSON object")
	}
	r := newObj("", root)
	c := &Config{CandidateSource: -1, GateTemp: 1}
	var nested []*obj // sub-objects whose unused keys are reported too

	// Which object holds the text model's fields, and which family it is.
	f := r
	mt := r.str("", "model_type")
	if tc, ok := r.object("text_config"); ok {
		f = tc
		if tmt := tc.str("", "model_type"); tmt != "" && tmt != "deepseek_v41_text" && tmt != "deepseek_v41" {
			return nil, &ConfigError{Field: "text_config.model_type", Err: fmt.Errorf("unknown model type %q", tmt)}
		}
		if mt == "" {
			mt = "deepseek_v41"
		}
	}
	switch mt {
	case "deepseek_v4":
		c.Arch = ArchV4
	case "deepseek_v41", "deepseek_v41_text":
		c.Arch = ArchV41
	case "":
		// The reference inference/config.json has no model_type; V4.1-only
		// keys tell the families apart.
		if !r.has("dim", "hidden_size") {
			return nil, &ConfigError{Field: "model_type", Err: errors.New("missing, and no dim/hidden_size to recognise an inference config")}
		}
		c.Arch = ArchV4
		if r.has("kv_source_layers", "kv_source_layer_ids", "engram_layer_ids", "candidate_source_layer", "candidate_source_layer_id", "n_mtp_layers") {
			c.Arch = ArchV41
		}
	default:
		return nil, &ConfigError{Field: "model_type", Err: fmt.Errorf("unknown model type %q (want deepseek_v4 or deepseek_v41)", mt)}
	}
	if r.err != nil {
		return nil, r.err
	}

	c.Dim = f.intv(true, 0, "hidden_size", "dim")
	c.Layers = f.intv(true, 0, "num_hidden_layers", "n_layers")
	c.Heads = f.intv(true, 0, "num_attention_heads", "n_heads")
	c.HeadDim = f.intv(false, 512, "head_dim")
	c.RopeDim = f.intv(false, 64, "qk_rope_head_dim", "rope_head_dim")
	c.QLoraRank = f.intv(true, 0, "q_lora_rank")
	c.OGroups = f.intv(true, 0, "o_groups")
	c.OLoraRank = f.intv(true, 0, "o_lora_rank")
	c.Window = f.intv(false, 128, "sliding_window", "window_size")
	c.VocabSize = f.intv(true, 0, "vocab_size")
	defEps := 1e-6
	if c.Arch == ArchV41 {
		defEps = 1e-20
	}
	c.NormEps = float32(f.floatv(defEps, "rms_norm_eps", "norm_eps"))
	c.RopeTheta = f.floatv(10000, "rope_theta")
	c.CRopeTheta = f.floatv(160000, "compress_rope_theta")
	c.RopeFactor, c.OrigSeqLen, c.BetaFast, c.BetaSlow = 16, 65536, 32, 1
	if rs, ok := f.object("rope_scaling"); ok {
		typ := rs.str("", "type", "rope_type")
		if typ != "yarn" {
			return nil, &ConfigError{Field: f.prefix + "rope_scaling.type", Err: fmt.Errorf("rope scaling %q is not supported (want yarn)", typ)}
		}
		c.RopeFactor = rs.floatv(c.RopeFactor, "factor")
		c.OrigSeqLen = rs.intv(false, c.OrigSeqLen, "original_max_position_embeddings")
		c.BetaFast = rs.floatv(c.BetaFast, "beta_fast")
		c.BetaSlow = rs.floatv(c.BetaSlow, "beta_slow")
		rs.get("mscale", "mscale_all_dim") // HF fills these; the models use neither.
		if rs.err != nil {
			return nil, rs.err
		}
		nested = append(nested, rs)
	}
	c.RopeFactor = f.floatv(c.RopeFactor, "rope_factor")
	c.OrigSeqLen = f.intv(false, c.OrigSeqLen, "original_seq_len")
	c.BetaFast = f.floatv(c.BetaFast, "beta_fast")
	c.BetaSlow = f.floatv(c.BetaSlow, "beta_slow")
	c.MaxPositions = f.intv(false, 0, "max_position_embeddings")
	if c.MaxPositions == 0 {
		c.MaxPositions = int(float64(c.OrigSeqLen) * c.RopeFactor)
	}
	c.CompressRatio = f.ints(true, "compress_ratios")

	c.IndexHeads = f.intv(false, 0, "index_n_heads")
	c.IndexHeadDim = f.intv(false, 0, "index_head_dim")
	c.IndexTopK = f.intv(false, 0, "index_topk")
	c.HCMult = f.intv(false, 4, "hc_mult")
	c.HCIters = f.intv(false, 20, "hc_sinkhorn_iters")
	c.HCEps = float32(f.floatv(1e-6, "hc_eps"))
	c.MoEInter = f.intv(true, 0, "moe_intermediate_size", "moe_inter_dim")
	c.Experts = f.intv(true, 0, "n_routed_experts")
	c.TopK = f.intv(true, 0, "num_experts_per_tok", "n_activated_experts")
	c.Shared = f.intv(false, 1, "n_shared_experts")
	c.HashLayers = f.intv(false, 0, "num_hash_layers", "n_hash_layers")
	c.RouteScale = float32(f.floatv(1, "routed_scaling_factor", "route_scale"))
	c.SwiGLULimit = float32(f.floatv(0, "swiglu_limit"))
	c.GateTemp = float32(f.floatv(1, "gate_temp"))
	c.MTPLayers = f.intv(false, 1, "num_nextn_predict_layers", "n_mtp_layers")
	c.BOS = f.intv(false, 0, "bos_token_id")
	c.EOS = f.intv(false, 1, "eos_token_id")
	if sf := f.str("sqrtsoftplus", "scoring_func", "score_func"); sf != "sqrtsoftplus" {
		k, _, _ := f.get("scoring_func", "score_func")
		return nil, &ConfigError{Field: f.prefix + k, Err: fmt.Errorf("scoring function %q is not supported (want sqrtsoftplus)", sf)}
	}

	// Quantization: root quantization_config (V4.1), the text object's (V4),
	// or the inference config's dtype / expert_dtype keys.
	c.FP8Block = 128
	if c.Arch == ArchV41 {
		c.FP8Block = 32
	}
	expertDType := f.str("", "expert_dtype")
	if f != r {
		if e := r.str("", "expert_dtype"); e != "" {
			expertDType = e
		}
	}
	var q *obj
	for _, o := range []*obj{f, r} {
		if qq, ok := o.object("quantization_config"); ok && q == nil {
			q = qq
		}
		if o.err != nil {
			return nil, o.err
		}
	}
	if q != nil {
		if m := q.str("fp8", "quant_method"); m != "fp8" {
			return nil, &ConfigError{Field: q.prefix + "quant_method", Err: fmt.Errorf("quantization %q is not supported (want fp8)", m)}
		}
		if bs := q.ints(false, "weight_block_size"); bs != nil {
			if len(bs) != 2 || bs[0] != bs[1] || bs[0] <= 0 {
				return nil, &ConfigError{Field: q.prefix + "weight_block_size", Err: fmt.Errorf("%v is not a square positive block", bs)}
			}
			c.FP8Block = bs[0]
		}
		if e := q.str("", "expert_dtype"); e != "" {
			expertDType = e
		}
		q.get("fmt", "activation_scheme", "scale_fmt")
		if q.err != nil {
			return nil, q.err
		}
		nested = append(nested, q)
	}
	switch expertDType {
	case "fp4":
		c.ExpertFP4 = true
	case "", "fp8", "bf16":
	default:
		return nil, &ConfigError{Field: "expert_dtype", Err: fmt.Errorf("unknown expert dtype %q", expertDType)}
	}

	if c.Arch == ArchV41 {
		c.KVSourceLayers = f.ints(false, "kv_source_layer_ids", "kv_source_layers")
		c.IndexSourceLayers = f.ints(false, "index_source_layer_ids", "index_source_layers")
		c.CandidateSource = f.intv(false, -1, "candidate_source_layer_id", "candidate_source_layer")
		c.CandidateTopK = f.intv(false, 0, "candidate_topk_blocks")
		c.CandidateBlock = f.intv(false, 0, "candidate_block_size")
		c.EngramLayers = f.ints(false, "engram_layer_ids")
		c.EngramMaxNgram = f.intv(false, 0, "engram_max_ngram_size")
		c.EngramHeads = f.intv(false, 0, "engram_n_heads")
		c.EngramHeadDim = f.intv(false, 0, "engram_head_dim")
		c.EngramVocab = f.intv(false, 0, "engram_vocab_size")
		c.EngramRows = f.ints(false, "engram_num_embeddings")
		c.EngramPad = f.intv(false, 2, "engram_pad_token_id", "engram_pad_id")
		c.EngramCompressed = f.intv(false, 0, "engram_compressed_vocab_size")
	}
	for _, o := range []*obj{f, r} {
		for _, k := range knownUnused {
			o.get(k)
		}
		if o.err != nil {
			return nil, o.err
		}
	}
	if f != r {
		r.used["text_config"] = true
		c.Ignored = append(c.Ignored, r.ignored()...)
	}
	c.Ignored = append(c.Ignored, f.ignored()...)
	for _, o := range nested {
		c.Ignored = append(c.Ignored, o.ignored()...)
	}
	sort.Strings(c.Ignored)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the hyperparameters for consistency; the error names the
// offending field by its HF spelling.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"hidden_size", c.Dim}, {"num_hidden_layers", c.Layers}, {"num_attention_heads", c.Heads},
		{"head_dim", c.HeadDim}, {"qk_rope_head_dim", c.RopeDim}, {"q_lora_rank", c.QLoraRank},
		{"o_groups", c.OGroups}, {"o_lora_rank", c.OLoraRank}, {"sliding_window", c.Window},
		{"vocab_size", c.VocabSize}, {"moe_intermediate_size", c.MoEInter},
		{"n_routed_experts", c.Experts}, {"num_experts_per_tok", c.TopK},
		{"hc_mult", c.HCMult}, {"hc_sinkhorn_iters", c.HCIters},
		{"weight_block_size", c.FP8Block},
	} {
		if p.v <= 0 {
			return bad(p.name, "must be positive, got %d", p.v)
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"n_shared_experts", c.Shared}, {"num_hash_layers", c.HashLayers},
		{"num_nextn_predict_layers", c.MTPLayers}, {"index_n_heads", c.IndexHeads},
		{"index_head_dim", c.IndexHeadDim}, {"index_topk", c.IndexTopK},
	} {
		if p.v < 0 {
			return bad(p.name, "must not be negative, got %d", p.v)
		}
	}
	if !(c.NormEps > 0) {
		return bad("rms_norm_eps", "must be positive, got %g", c.NormEps)
	}
	if !(c.HCEps >= 0) {
		return bad("hc_eps", "must not be negative, got %g", c.HCEps)
	}
	if !(c.RopeTheta > 0) || !(c.CRopeTheta > 0) {
		return bad("rope_theta", "rope bases must be positive (%g, %g)", c.RopeTheta, c.CRopeTheta)
	}
	if !(c.RopeFactor >= 1) || c.OrigSeqLen <= 0 || !(c.BetaFast > 0) || !(c.BetaSlow > 0) {
		return bad("rope_scaling", "factor %g, original_max_position_embeddings %d, beta_fast %g, beta_slow %g out of range", c.RopeFactor, c.OrigSeqLen, c.BetaFast, c.BetaSlow)
	}
	if c.RopeDim%2 != 0 || c.RopeDim > c.HeadDim {
		return bad("qk_rope_head_dim", "%d must be even and at most head_dim %d", c.RopeDim, c.HeadDim)
	}
	if c.Heads%c.OGroups != 0 {
		return bad("o_groups", "%d does not divide num_attention_heads %d", c.OGroups, c.Heads)
	}
	if c.TopK > c.Experts {
		return bad("num_experts_per_tok", "%d exceeds n_routed_experts %d", c.TopK, c.Experts)
	}
	if c.HashLayers > c.Layers {
		return bad("num_hash_layers", "%d exceeds num_hidden_layers %d", c.HashLayers, c.Layers)
	}
	if c.ExpertFP4 && (c.Dim%32 != 0 || c.MoEInter%32 != 0) {
		// FP4 rows carry one scale per 32 inputs; both expert input widths
		// (Dim for w1/w3, MoEInter for w2) must be multiples of 32.
		return bad("moe_intermediate_size", "FP4 experts need hidden_size %d and moe_intermediate_size %d divisible by 32", c.Dim, c.MoEInter)
	}
	if len(c.CompressRatio) < c.Layers {
		return bad("compress_ratios", "%d entries, need at least num_hidden_layers = %d", len(c.CompressRatio), c.Layers)
	}
	needIndex := false
	for i, r := range c.CompressRatio {
		switch {
		case r < 0:
			return bad("compress_ratios", "entry %d is negative (%d)", i, r)
		case c.Arch == ArchV4 && r == 1:
			return bad("compress_ratios", "entry %d: ratio 1 exists only in V4.1", i)
		case c.Arch == ArchV4 && r == 4:
			needIndex = true
		}
	}
	if c.Arch == ArchV41 && len(c.IndexSourceLayers) > 0 {
		needIndex = true
	}
	if needIndex {
		if c.IndexHeads <= 0 || c.IndexHeadDim <= 0 || c.IndexTopK <= 0 {
			return bad("index_n_heads", "the indexer needs index_n_heads, index_head_dim, index_topk (got %d, %d, %d)", c.IndexHeads, c.IndexHeadDim, c.IndexTopK)
		}
		if c.RopeDim > c.IndexHeadDim {
			return bad("index_head_dim", "%d is smaller than qk_rope_head_dim %d", c.IndexHeadDim, c.RopeDim)
		}
	}
	if c.Arch == ArchV41 {
		if err := c.validateV41(bad); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateV41(bad func(string, string, ...any) error) error {
	layerList := func(field string, ls []int, needCompressed bool) error {
		if !slices.IsSorted(ls) {
			return bad(field, "%v is not sorted", ls)
		}
		for i, l := range ls {
			if l < 0 || l >= c.Layers {
				return bad(field, "layer %d out of range [0, %d)", l, c.Layers)
			}
			if i > 0 && ls[i-1] == l {
				return bad(field, "layer %d listed twice", l)
			}
			if needCompressed && c.CompressRatio[l] == 0 {
				return bad(field, "layer %d has compress ratio 0", l)
			}
		}
		return nil
	}
	if err := layerList("kv_source_layer_ids", c.KVSourceLayers, true); err != nil {
		return err
	}
	if err := layerList("index_source_layer_ids", c.IndexSourceLayers, true); err != nil {
		return err
	}
	if err := layerList("engram_layer_ids", c.EngramLayers, false); err != nil {
		return err
	}
	// Every compressed layer reads the latest KV source at or before it.
	for l := 0; l < c.Layers; l++ {
		if c.CompressRatio[l] > 0 && (len(c.KVSourceLayers) == 0 || c.KVSourceLayers[0] > l) {
			return bad("kv_source_layer_ids", "compressed layer %d has no KV source at or before it", l)
		}
	}
	if c.CandidateSource != -1 {
		if !slices.Contains(c.IndexSourceLayers, c.CandidateSource) {
			return bad("candidate_source_layer_id", "%d is not an index source layer", c.CandidateSource)
		}
		if c.CandidateTopK <= 0 || c.CandidateBlock <= 0 {
			return bad("candidate_topk_blocks", "candidate_topk_blocks %d and candidate_block_size %d must be positive", c.CandidateTopK, c.CandidateBlock)
		}
	}
	if len(c.EngramLayers) > 0 {
		switch {
		case c.EngramMaxNgram < 2:
			return bad("engram_max_ngram_size", "must be at least 2, got %d", c.EngramMaxNgram)
		case c.EngramHeads <= 0:
			return bad("engram_n_heads", "must be positive, got %d", c.EngramHeads)
		case c.EngramHeadDim <= 0 || c.EngramHeadDim%32 != 0:
			return bad("engram_head_dim", "must be a positive multiple of 32, got %d", c.EngramHeadDim)
		case len(c.EngramRows) != len(c.EngramLayers):
			return bad("engram_num_embeddings", "%d entries for %d engram layers", len(c.EngramRows), len(c.EngramLayers))
		case c.EngramCompressed <= 0:
			return bad("engram_compressed_vocab_size", "must be positive, got %d", c.EngramCompressed)
		case c.EngramPad < 0 || c.EngramPad >= c.VocabSize:
			return bad("engram_pad_token_id", "%d outside the vocabulary", c.EngramPad)
		}
		for i, r := range c.EngramRows {
			if r <= 0 {
				return bad("engram_num_embeddings", "entry %d is %d", i, r)
			}
		}
	}
	return nil
}
