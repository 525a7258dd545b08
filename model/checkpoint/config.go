package checkpoint

// Arch names the model family a checkpoint belongs to.
type Arch string

// Architectures EdgeSeek runs.
const (
	ArchV4  Arch = "v4"   // DeepSeek-V4 Flash and Pro
	ArchV41 Arch = "v4.1" // DeepSeek-V4.1 Flash
)

// Config is the model's hyperparameters, normalised from any of the accepted
// config.json spellings (HF root config, V4.1 nested text_config, reference
// inference/config.json). Field comments give the HF key.
type Config struct {
	Arch Arch

	Dim        int // hidden_size
	Layers     int // num_hidden_layers (backbone only)
	Heads      int // num_attention_heads
	HeadDim    int // head_dim (512 in the releases)
	RopeDim    int // qk_rope_head_dim
	QLoraRank  int // q_lora_rank
	OGroups    int // o_groups
	OLoraRank  int // o_lora_rank
	Window     int // sliding_window
	VocabSize  int // vocab_size
	NormEps    float32
	RopeTheta  float64 // rope_theta (ratio-0 layers)
	CRopeTheta float64 // compress_rope_theta (compressed layers, with YaRN)
	// YaRN (rope_scaling), applied only on compressed layers.
	RopeFactor    float64 // factor
	OrigSeqLen    int     // original_max_position_embeddings
	BetaFast      float64
	BetaSlow      float64
	MaxPositions  int   // max_position_embeddings
	CompressRatio []int // compress_ratios, one per backbone layer then MTP layers

	IndexHeads   int // index_n_heads
	IndexHeadDim int // index_head_dim
	IndexTopK    int // index_topk

	HCMult      int     // hc_mult
	HCIters     int     // hc_sinkhorn_iters
	HCEps       float32 // hc_eps
	MoEInter    int     // moe_intermediate_size
	Experts     int     // n_routed_experts
	TopK        int     // num_experts_per_tok
	Shared      int     // n_shared_experts
	HashLayers  int     // num_hash_layers (V4)
	RouteScale  float32 // routed_scaling_factor
	SwiGLULimit float32 // swiglu_limit
	GateTemp    float32 // gate_temp (V4.1; 1 when absent)
	MTPLayers   int     // num_nextn_predict_layers
	BOS, EOS    int

	// Quantization: FP8 block edge of the trunk (128 V4, 32 V4.1), and
	// whether routed experts are FP4.
	FP8Block  int
	ExpertFP4 bool

	// V4.1 only.
	KVSourceLayers    []int // kv_source_layer_ids
	IndexSourceLayers []int // index_source_layer_ids
	CandidateSource   int   // candidate_source_layer_id (-1 if none)
	CandidateTopK     int   // candidate_topk_blocks
	CandidateBlock    int   // candidate_block_size
	EngramLayers      []int // engram_layer_ids
	EngramMaxNgram    int   // engram_max_ngram_size
	EngramHeads       int   // engram_n_heads
	EngramHeadDim     int   // engram_head_dim
	EngramVocab       int   // engram_vocab_size
	EngramRows        []int // engram_num_embeddings (per Engram layer)
	EngramPad         int   // engram_pad_token_id
	EngramCompressed  int   // engram_compressed_vocab_size

	// Ignored lists config keys the parser did not use (dotted paths for
	// nested objects), sorted, for `edgeseek info`.
	Ignored []string
}
