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
			per = float64(d) / float64(m)
			c := 1
			if m == 4 {
				c = 2
				per += float64(dI) / float64(m)
				p.FixedBytes += f * 2 * (2 * m * c * dI) // indexer compressor state
			}
			p.FixedBytes += f * 2 * (2 * m * c * d)
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
