package model

import "fmt"

// batch is what the layers of one forward call share: the token rows of
// every sequence in the call, laid end to end, so that each projection reads
// its weights once for all of them. Everything position-dependent is looked
// up through the span a row belongs to. In V4.1 it also carries, per row, the
// top-k indices and candidate mask published by the most recent index source:
// per-call values, not part of the persistent State.
type batch struct {
	R      int          // rows: the tokens of all sequences
	spans  []span       // one per sequence, in call order
	tokens []int        // [R] token ids
	pos    []int        // [R] position of each row in its sequence
	engram [][][]int64  // [Engram layer][R] table rows (V4.1)
	fetch  *engramFetch // their gathered values, prefetched from the start of the call
	topk   [][]int      // [R]
	cand   [][]bool     // [R]
}

// span is one sequence's share of a batch: rows [r0, r0+T), at positions
// p0 … p0+T−1 of the sequence held in st.
type span struct {
	st        *State
	r0, T, p0 int
	all       bool   // logits of every row, else of the last
	trace     *Trace // filled when non-nil
}

// newBatch checks every input before anything runs, so that a rejected call
// leaves all states untouched, and lays the sequences' rows end to end. On
// success it has started the Engram fetch (engram_prefetch.go), which the
// caller must join (b.fetch.join) before it returns.
func (m *Model) newBatch(sts []*State, ins []Input, opts []Options) (*batch, error) {
	cfg := m.Config
	if len(sts) == 0 || len(ins) != len(sts) || (opts != nil && len(opts) != len(sts)) {
		return nil, fmt.Errorf("forward: %d states, %d inputs and %d options", len(sts), len(ins), len(opts))
	}
	var eng []*Engram
	for _, ly := range m.layers {
		if ly.Engram != nil {
			eng = append(eng, ly.Engram)
		}
	}
	b := &batch{spans: make([]span, len(sts)), engram: make([][][]int64, len(eng))}
	seen := make(map[*State]bool, len(sts))
	for i, st := range sts {
		in := ins[i]
		where := "forward"
		if len(sts) > 1 {
			where = fmt.Sprintf("forward: sequence %d", i)
		}
		if st == nil {
			return nil, fmt.Errorf("%s: no state", where)
		}
		if seen[st] {
			// Its rows would read caches that its own earlier rows have
			// not written yet.
			return nil, fmt.Errorf("%s: the state appears twice in one call", where)
		}
		seen[st] = true
		T := len(in.Tokens)
		if T == 0 {
			return nil, fmt.Errorf("%s: no tokens", where)
		}
		for t, tok := range in.Tokens {
			if tok < 0 || tok >= cfg.VocabSize {
				return nil, fmt.Errorf("%s: token %d at index %d outside the vocabulary [0,%d)", where, tok, t, cfg.VocabSize)
			}
		}
		if len(eng) > 0 {
			if len(in.Engram) != T {
				return nil, fmt.Errorf("%s: V4.1 needs Engram rows for each of the %d tokens, got %d", where, T, len(in.Engram))
			}
			for t, rows := range in.Engram {
				if len(rows) < len(eng) {
					return nil, fmt.Errorf("%s: token %d has rows for %d Engram layers, the model has %d", where, t, len(rows), len(eng))
				}
				for l, e := range eng {
					if len(rows[l]) != e.Cols {
						return nil, fmt.Errorf("%s: token %d has %d rows for Engram layer %d, want %d", where, t, len(rows[l]), l, e.Cols)
					}
					for _, r := range rows[l] {
						if r < 0 || r >= int64(e.Rows) {
							return nil, fmt.Errorf("%s: token %d: Engram row %d out of range [0,%d)", where, t, r, e.Rows)
						}
					}
				}
			}
		}
		sp := span{st: st, r0: b.R, T: T, p0: st.Pos}
		if opts != nil {
			sp.all, sp.trace = opts[i].AllLogits, opts[i].Trace
		}
		if tr := sp.trace; tr != nil {
			tr.Selected, tr.Comb, tr.SelectedAll, tr.last = map[int][]int{}, map[int][]float32{}, map[int][][]int{}, T-1
		}
		b.spans[i] = sp
		b.R += T
		b.tokens = append(b.tokens, in.Tokens...)
		for t := 0; t < T; t++ {
			b.pos = append(b.pos, st.Pos+t)
		}
		for l := range eng {
			for t := 0; t < T; t++ {
				b.engram[l] = append(b.engram[l], in.Engram[t][l])
			}
		}
	}
	b.topk, b.cand = make([][]int, b.R), make([][]bool, b.R)
	// Every input is checked: start reading the Engram tables now, beside
	// the layers that come before the first Engram layer. The caller joins
	// the fetch before it returns.
	b.fetch = m.startEngramFetch(eng, b.engram)
	return b, nil
}
