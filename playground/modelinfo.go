package playground

import (
	"sort"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

// ModelInfo is what /api/model reports: the architecture, parameter counts
// by dtype, the layer schedule and the cache cost per token.
type ModelInfo struct {
	Name         string `json:"name,omitempty"`
	Arch         string `json:"arch"`         // "v4" or "v4.1"
	Architecture string `json:"architecture"` // "DeepSeek-V4"
	Dim          int    `json:"dim"`
	Layers       int    `json:"layers"`
	Heads        int    `json:"heads"`
	HeadDim      int    `json:"head_dim"`
	RopeDim      int    `json:"rope_dim"`
	Experts      int    `json:"experts"`
	ExpertsTopK  int    `json:"experts_top_k"`
	Shared       int    `json:"shared_experts"`
	MoEInter     int    `json:"moe_inter"`
	Vocab        int    `json:"vocab"`
	Window       int    `json:"window"`
	IndexTopK    int    `json:"index_top_k"`
	HCMult       int    `json:"hc_mult"`
	MaxPositions int    `json:"max_positions"`
	ContextLimit int    `json:"context_limit"`
	BOS          int    `json:"bos"`
	EOS          int    `json:"eos"`
	// Params lists the stored tensors by dtype, largest first.
	Params []DTypeParams `json:"params,omitempty"`
	// TotalParams counts parameters, not scales (FP4 packs two per byte).
	TotalParams int64 `json:"total_params,omitempty"`
	TotalBytes  int64 `json:"total_bytes,omitempty"`
	// Schedule is one entry per backbone layer.
	Schedule []LayerInfo `json:"schedule"`
	// CSALayers lists the layers with a lightning indexer (whose selections
	// the page draws); their compression ratio is in Schedule.
	CSALayers []int     `json:"csa_layers"`
	Cache     CacheInfo `json:"cache"`
	// Engram configures the browser edge module's Engram addressing (V4.1).
	Engram *EngramInfo `json:"engram,omitempty"`
}

// DTypeParams is one dtype's share of the checkpoint.
type DTypeParams struct {
	DType   string `json:"dtype"`
	Label   string `json:"label"`
	Tensors int    `json:"tensors"`
	Params  int64  `json:"params"`
	Bytes   int64  `json:"bytes"`
	// Scale marks block scales, which are not parameters.
	Scale bool `json:"scale,omitempty"`
}

// LayerInfo is one layer of the schedule.
type LayerInfo struct {
	Layer  int    `json:"layer"`
	Kind   string `json:"kind"`  // model.LayerKind: window, CSA, HCA, CSA2/…
	Ratio  int    `json:"ratio"` // compression ratio (0: window only)
	Hash   bool   `json:"hash,omitempty"`
	Engram bool   `json:"engram,omitempty"`
}

// CacheInfo is the sequence cache cost (model.Plan).
type CacheInfo struct {
	FixedBytes    int                `json:"fixed_bytes"`
	PerTokenBytes float64            `json:"per_token_bytes"`
	PerKind       map[string]float64 `json:"per_kind"`
}

// EngramInfo mirrors protocol.EngramConfig in JSON.
type EngramInfo struct {
	LayerIDs        []int `json:"layer_ids"`
	MaxNgram        int   `json:"max_ngram"`
	Heads           int   `json:"heads"`
	VocabSize       int   `json:"vocab_size"`
	CompressedVocab int   `json:"compressed_vocab"`
	PadID           int   `json:"pad_id"`
}

// NewModelInfo describes cfg; sum may be nil, contextLimit 0 takes the
// model's MaxPositions.
func NewModelInfo(name string, cfg checkpoint.Config, sum *checkpoint.Summary, contextLimit int) ModelInfo {
	if contextLimit <= 0 {
		contextLimit = cfg.MaxPositions
	}
	arch := "DeepSeek-V4"
	if cfg.Arch == checkpoint.ArchV41 {
		arch = "DeepSeek-V4.1"
	}
	mi := ModelInfo{Name: name, Arch: string(cfg.Arch), Architecture: arch, Dim: cfg.Dim, Layers: cfg.Layers,
		Heads: cfg.Heads, HeadDim: cfg.HeadDim, RopeDim: cfg.RopeDim, Experts: cfg.Experts, ExpertsTopK: cfg.TopK,
		Shared: cfg.Shared, MoEInter: cfg.MoEInter, Vocab: cfg.VocabSize, Window: cfg.Window, IndexTopK: cfg.IndexTopK,
		HCMult: cfg.HCMult, MaxPositions: cfg.MaxPositions, ContextLimit: contextLimit, BOS: cfg.BOS, EOS: cfg.EOS,
		Schedule: []LayerInfo{}, CSALayers: []int{}}
	for l := 0; l < cfg.Layers && l < len(cfg.CompressRatio); l++ {
		li := LayerInfo{Layer: l, Kind: model.LayerKind(cfg, l), Ratio: cfg.CompressRatio[l], Hash: l < cfg.HashLayers}
		for _, e := range cfg.EngramLayers {
			li.Engram = li.Engram || e == l
		}
		mi.Schedule = append(mi.Schedule, li)
		if hasIndexer(cfg, l) {
			mi.CSALayers = append(mi.CSALayers, l)
		}
	}
	if len(cfg.CompressRatio) >= cfg.Layers {
		p := model.Plan(cfg)
		mi.Cache = CacheInfo{FixedBytes: p.FixedBytes, PerTokenBytes: p.PerTokenBytes, PerKind: p.PerKind}
	}
	if mi.Cache.PerKind == nil {
		mi.Cache.PerKind = map[string]float64{}
	}
	if sum != nil {
		for d, st := range sum.ByDType {
			dp := DTypeParams{DType: string(d), Label: string(d), Tensors: st.Tensors, Bytes: st.Bytes,
				Params: st.Bytes / int64(max(d.Size(), 1))}
			switch d {
			case safetensors.I8:
				dp.Params, dp.Label = 2*st.Bytes, "FP4 (I8 x2)"
			case safetensors.F8E8M0:
				dp.Label, dp.Scale = "F8_E8M0 scales", true
			}
			mi.Params = append(mi.Params, dp)
			if !dp.Scale {
				mi.TotalParams += dp.Params
			}
		}
		sort.Slice(mi.Params, func(i, j int) bool {
			if mi.Params[i].Bytes != mi.Params[j].Bytes {
				return mi.Params[i].Bytes > mi.Params[j].Bytes
			}
			return mi.Params[i].DType < mi.Params[j].DType
		})
		mi.TotalBytes = sum.Bytes
	}
	if len(cfg.EngramLayers) > 0 {
		mi.Engram = &EngramInfo{LayerIDs: append([]int(nil), cfg.EngramLayers...), MaxNgram: cfg.EngramMaxNgram,
			Heads: cfg.EngramHeads, VocabSize: cfg.EngramVocab, CompressedVocab: cfg.EngramCompressed, PadID: cfg.EngramPad}
	}
	return mi
}

// hasIndexer reports whether layer l selects compressed entries with a
// lightning indexer: V4's ratio-4 CSA layers; on V4.1 every compressed
// layer (CSA2) attends to a selection.
func hasIndexer(cfg checkpoint.Config, l int) bool {
	r := cfg.CompressRatio[l]
	if cfg.Arch == checkpoint.ArchV4 {
		return r == 4
	}
	return r > 0
}
