package engine

import (
	"fmt"
	"strings"

	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// LayerPlan is one layer's share of a sequence's cache.
type LayerPlan struct {
	Layer int
	// Kind is "swa" (window only), "csa" (ratio 4 with indexer keys),
	// "hca" (ratio 128), "kv-source" (V4.1 layer owning compressed KV and
	// index keys) or "kv-reader" (V4.1 layer reading another layer's KV).
	Kind  string
	Ratio int // tokens per compressed entry, 0 for window-only layers
	// EntryFloats is the float32 count of one compressed entry this layer
	// stores (KV plus its indexer key), 0 when it stores none.
	EntryFloats int
	// WindowBytes is the fixed size of the window ring.
	WindowBytes int64
}

// BytesPerToken is the cache growth per token, averaged over a window of
// Ratio tokens (EntryFloats·4/Ratio).
func (l LayerPlan) BytesPerToken() float64 {
	if l.Ratio == 0 || l.EntryFloats == 0 {
		return 0
	}
	return float64(4*l.EntryFloats) / float64(l.Ratio)
}

// MemoryPlan tells how much cache memory a sequence needs: a fixed part
// (window rings and compressor buffers) plus compressed entries that grow
// with the number of tokens.
type MemoryPlan struct {
	FixedBytes int64 // per sequence, whatever its length
	Layers     []LayerPlan
}

// NewMemoryPlan computes the plan from a model configuration; fixed is the
// measured size of an empty sequence's caches (windows and compressor
// buffers), or 0 to count the window rings only.
func NewMemoryPlan(cfg checkpoint.Config, fixed int64) (MemoryPlan, error) {
	if len(cfg.CompressRatio) < cfg.Layers {
		return MemoryPlan{}, fmt.Errorf("memory plan: %d compress ratios for %d layers", len(cfg.CompressRatio), cfg.Layers)
	}
	p := MemoryPlan{FixedBytes: fixed}
	var windows int64
	for l := 0; l < cfg.Layers; l++ {
		m := cfg.CompressRatio[l]
		lp := LayerPlan{Layer: l, Ratio: m, WindowBytes: int64(4 * cfg.Window * cfg.HeadDim)}
		windows += lp.WindowBytes
		switch {
		case m == 0:
			lp.Kind = "swa"
		case cfg.Arch == checkpoint.ArchV41:
			lp.Kind = "kv-reader"
			for _, s := range cfg.KVSourceLayers {
				if s == l {
					lp.Kind = "kv-source"
					lp.EntryFloats = cfg.HeadDim + cfg.IndexHeadDim
				}
			}
		case m == 4:
			lp.Kind = "csa"
			lp.EntryFloats = cfg.HeadDim + cfg.IndexHeadDim
		default:
			lp.Kind = "hca"
			lp.EntryFloats = cfg.HeadDim
		}
		p.Layers = append(p.Layers, lp)
	}
	if p.FixedBytes == 0 {
		p.FixedBytes = windows
	}
	return p, nil
}

// SeqBytes is the cache size of a sequence after it has consumed n tokens.
func (p MemoryPlan) SeqBytes(n int) int64 {
	b := p.FixedBytes
	for _, l := range p.Layers {
		if l.Ratio > 0 && l.EntryFloats > 0 {
			b += int64(n/l.Ratio) * int64(4*l.EntryFloats)
		}
	}
	return b
}

// MaxTokensWithin is the largest n with SeqBytes(n) <= budget, capped at
// limit; -1 when not even an empty sequence fits.
func (p MemoryPlan) MaxTokensWithin(budget int64, limit int) int {
	if p.SeqBytes(0) > budget {
		return -1
	}
	lo, hi := 0, limit
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if p.SeqBytes(mid) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// String is a human-readable summary, one line per layer kind.
func (p MemoryPlan) String() string {
	type agg struct {
		n      int
		perTok float64
		window int64
	}
	kinds := map[string]*agg{}
	var order []string
	for _, l := range p.Layers {
		a := kinds[l.Kind]
		if a == nil {
			a = &agg{}
			kinds[l.Kind] = a
			order = append(order, l.Kind)
		}
		a.n++
		a.perTok += l.BytesPerToken()
		a.window += l.WindowBytes
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cache per sequence: %d bytes fixed", p.FixedBytes)
	for _, k := range order {
		a := kinds[k]
		fmt.Fprintf(&b, "; %s ×%d: window %d bytes, %.2f bytes/token", k, a.n, a.window, a.perTok)
	}
	fmt.Fprintf(&b, "; 1K tokens: %d bytes", p.SeqBytes(1024))
	return b.String()
}
