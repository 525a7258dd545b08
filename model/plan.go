package model

import (
	"fmt"
	"strings"

	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// LayerKind names a layer's attention type.
func LayerKind(cfg checkpoint.Config, l int) string {
	m := cfg.CompressRatio[l]
	switch {
	case m == 0:
		return "window"
	case cfg.Arch == checkpoint.ArchV4 && m == 4:
		return "CSA"
	case cfg.Arch == checkpoint.ArchV4:
		return "HCA"
	}
	var tags []string
	if contains(cfg.KVSourceLayers, l) {
		tags = append(tags, "kv-source")
	}
	if contains(cfg.IndexSourceLayers, l) {
		tags = append(tags, "index-source")
	}
	if l == cfg.CandidateSource {
		tags = append(tags, "candidates")
	}
	s := fmt.Sprintf("CSA2/%d", m)
	if len(tags) > 0 {
		s += "(" + strings.Join(tags, ",") + ")"
	}
	return s
}

// MemoryPlan is what a sequence's caches cost: a fixed part (window rings and
// compressor buffers) and a part that grows with every token (compressed
// entries and indexer keys). EdgeSeek caches float32.
type MemoryPlan struct {
	FixedBytes    int                // per sequence
	PerTokenBytes float64            // average growth per token
	PerKind       map[string]float64 // per-token bytes by layer kind, summed over layers
}

// Plan computes the cache memory plan of a configuration.
func Plan(cfg checkpoint.Config) MemoryPlan {
	const f = 4 // bytes per cached value
	p := MemoryPlan{PerKind: map[string]float64{}}
	d, dI := cfg.HeadDim, cfg.IndexHeadDim
	for l := 0; l < cfg.Layers; l++ {
		m := cfg.CompressRatio[l]
		p.FixedBytes += f * cfg.Window * d
		if m == 0 {
			continue
		}
		var per float64
		kind := LayerKind(cfg, l)
		switch cfg.Arch {
		case checkpoint.ArchV4:
			// Compressor state: the open window's (a, z), plus the previous
			// window's with CSA overlap, at width c·d.
			per = float64(d) / float64(m)
			if m == 4 {
				per += float64(dI) / float64(m)
				p.FixedBytes += f * 4 * m * 2 * (d + dI)
			} else {
				p.FixedBytes += f * 2 * m * d
			}
		case checkpoint.ArchV41:
			if !contains(cfg.KVSourceLayers, l) {
				continue
			}
			per = float64(d+dI) / float64(m)
			p.FixedBytes += f * 2 * m * d
			kind = "CSA2 kv-source"
		}
		p.PerKind[kind] += f * per
		p.PerTokenBytes += f * per
	}
	return p
}

// Bytes is the cache a sequence of n tokens needs.
func (p MemoryPlan) Bytes(n int) int64 {
	return int64(p.FixedBytes) + int64(p.PerTokenBytes*float64(n)+0.5)
}

// ScratchBytes estimates the temporary float32 buffers of one Forward call
// over a chunk of T tokens: per token the streams (and the copy Expand
// keeps), queries and attention outputs of every head, the low-rank and
// output projections, indexer queries, router logits and expert
// activations; plus the logits of the rows asked for.
func ScratchBytes(cfg checkpoint.Config, T, logitRows int) int64 {
	perTok := 2*cfg.HCMult*cfg.Dim + 2*cfg.Heads*cfg.HeadDim + cfg.HeadDim + cfg.QLoraRank +
		cfg.OGroups*cfg.OLoraRank + cfg.IndexHeads*cfg.IndexHeadDim + cfg.Experts +
		3*cfg.MoEInter*(cfg.TopK+1) + cfg.Dim*(2+cfg.TopK)
	return 4 * (int64(T)*int64(perTok) + int64(logitRows)*int64(cfg.VocabSize))
}
