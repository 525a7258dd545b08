package model

// State is one sequence's caches: everything a later token needs from the
// earlier ones. Its size grows with the number of compressed entries only; the
// window and compressor buffers are fixed.
type State struct {
	Pos    int // number of tokens already processed
	layers []*LayerState
}

// LayerState is one layer's share of a State.
type LayerState struct {
	Window *WindowCache
	// Compressed KV and its compressor (V4 compressed layers; V4.1 KV sources).
	KV   *CompressedKV
	Comp *CompressorState
	// Indexer keys and the V4 indexer's own compressor (CSA layers; V4.1 KV sources).
	IndexKeys *CompressedKV
	IndexComp *CompressorState
}

// NewState returns empty caches for a new sequence.
func (m *Model) NewState() *State {
	cfg := m.Config
	st := &State{}
	for _, ly := range m.layers {
		ls := &LayerState{Window: NewWindowCache(cfg.Window, cfg.HeadDim)}
		if a := ly.Attn; a.Comp != nil {
			ls.KV = &CompressedKV{D: cfg.HeadDim}
			ls.Comp = a.Comp.NewState()
		}
		if a := ly.Attn; a.Index != nil && a.Index.Comp != nil {
			ls.IndexComp = a.Index.Comp.NewState()
		}
		if ly.Attn.ownsIndexKeys() {
			ls.IndexKeys = &CompressedKV{D: cfg.IndexHeadDim}
		}
		st.layers = append(st.layers, ls)
	}
	return st
}

// Layer returns the caches of layer l.
func (s *State) Layer(l int) *LayerState { return s.layers[l] }

// Bytes is the memory the caches hold now.
func (s *State) Bytes() int {
	n := 0
	for _, ls := range s.layers {
		n += 4 * len(ls.Window.rows)
		for _, kv := range []*CompressedKV{ls.KV, ls.IndexKeys} {
			if kv != nil {
				n += 4 * kv.D * len(kv.Rows)
			}
		}
		for _, c := range []*CompressorState{ls.Comp, ls.IndexComp} {
			if c != nil {
				n += 4 * (len(c.prevA) + len(c.prevZ) + len(c.curA) + len(c.curZ))
			}
		}
	}
	return n
}

// WindowCache is the ring of the last W window key=value vectors; token p
// lives in slot p mod W.
type WindowCache struct {
	W, D int
	rows []float32
}

// NewWindowCache returns an empty ring of W vectors of width D.
func NewWindowCache(W, D int) *WindowCache {
	return &WindowCache{W: W, D: D, rows: make([]float32, W*D)}
}

// Row returns the slot of position p.
func (c *WindowCache) Row(p int) []float32 {
	s := p % c.W
	return c.rows[s*c.D : (s+1)*c.D]
}

// CompressedKV is the append-only list of a layer's compressed entries (or
// indexer keys): entry w summarises tokens [w·m, (w+1)·m).
type CompressedKV struct {
	D    int
	Rows [][]float32
}

// Len is the number of entries emitted so far.
func (c *CompressedKV) Len() int {
	if c == nil {
		return 0
	}
	return len(c.Rows)
}

// Clone returns a deep copy of the caches: continuing the copy and the
// original gives the same logits, and neither sees the other's later
// tokens. It serves prefix reuse without taking the cached state over.
func (s *State) Clone() *State {
	c := &State{Pos: s.Pos, layers: make([]*LayerState, len(s.layers))}
	for i, ls := range s.layers {
		c.layers[i] = &LayerState{
			Window:    ls.Window.clone(),
			KV:        ls.KV.clone(),
			Comp:      ls.Comp.clone(),
			IndexKeys: ls.IndexKeys.clone(),
			IndexComp: ls.IndexComp.clone(),
		}
	}
	return c
}

func (c *WindowCache) clone() *WindowCache {
	if c == nil {
		return nil
	}
	return &WindowCache{W: c.W, D: c.D, rows: append([]float32(nil), c.rows...)}
}

func (c *CompressedKV) clone() *CompressedKV {
	if c == nil {
		return nil
	}
	// One backing array for all rows: a clone is usually made to be kept.
	out := &CompressedKV{D: c.D, Rows: make([][]float32, len(c.Rows))}
	flat := make([]float32, 0, len(c.Rows)*c.D)
	for i, r := range c.Rows {
		flat = append(flat, r...)
		out.Rows[i] = flat[len(flat)-len(r) : len(flat) : len(flat)]
	}
	return out
}

func (s *CompressorState) clone() *CompressorState {
	if s == nil {
		return nil
	}
	cp := func(v []float32) []float32 {
		if v == nil {
			return nil
		}
		return append([]float32(nil), v...)
	}
	return &CompressorState{m: s.m, cd: s.cd, prevA: cp(s.prevA), prevZ: cp(s.prevZ), prevValid: s.prevValid,
		curA: cp(s.curA), curZ: cp(s.curZ)}
}
