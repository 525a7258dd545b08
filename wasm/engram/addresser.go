// Package engram computes DeepSeek-V4.1 Engram table row ids (spec §4):
// the canonical-id map built from a tokenizer, and the per-layer n-gram
// hashes of each position, from token ids alone.
package engram

import (
	"errors"
	"fmt"
	"math"
)

// Config is the Engram part of a V4.1 model configuration.
type Config struct {
	// LayerIDs are the decoder layers carrying an Engram (engram_layer_ids).
	LayerIDs []int
	// MaxNgram is engram_max_ngram_size: n-gram orders 2..MaxNgram.
	MaxNgram int
	// Heads is engram_n_heads, hash heads per order.
	Heads int
	// VocabSize is engram_vocab_size, where the prime search starts.
	VocabSize int
	// CompressedVocab is engram_compressed_vocab_size; the multipliers
	// depend on it and the canonical map must produce exactly this many ids.
	CompressedVocab int
	// PadID is the (uncompressed) pad token id, engram_pad_id.
	PadID int
}

// RealV41 is the V4.1-Flash configuration (spec §4.1).
var RealV41 = Config{LayerIDs: []int{1, 14}, MaxNgram: 4, Heads: 8, VocabSize: 16_000_000, CompressedVocab: 99_092, PadID: 2}

// layer holds one Engram layer's hash constants.
type layer struct {
	mult    []int64 // per shift s = 0..MaxNgram-1
	primes  []int64 // per column (order-2)*Heads + head
	offsets []int64 // row offset of each column in the layer's table
}

// Addresser turns token ids into Engram row ids. It is immutable and safe
// for concurrent use; per-sequence history lives in State.
type Addresser struct {
	cfg    Config
	canon  []int32
	padC   int64
	layers []layer
}

// NewAddresser checks cfg and the canonical map (canon[t] is the
// compressed id of token t) and precomputes multipliers, primes and
// offsets.
func NewAddresser(cfg Config, canon []int32) (*Addresser, error) {
	switch {
	case len(cfg.LayerIDs) == 0:
		return nil, errors.New("engram: no layer ids")
	case cfg.MaxNgram < 2 || cfg.MaxNgram > 16:
		return nil, fmt.Errorf("engram: max ngram %d must be in [2, 16]", cfg.MaxNgram)
	case cfg.Heads < 1 || cfg.Heads > 1024:
		return nil, fmt.Errorf("engram: heads %d must be in [1, 1024]", cfg.Heads)
	case cfg.VocabSize < 2 || cfg.VocabSize > 1<<40:
		return nil, fmt.Errorf("engram: vocab size %d out of range", cfg.VocabSize)
	case cfg.CompressedVocab < 1:
		return nil, fmt.Errorf("engram: compressed vocab %d must be positive", cfg.CompressedVocab)
	case cfg.PadID < 0 || cfg.PadID >= len(canon):
		return nil, fmt.Errorf("engram: pad id %d outside the canonical map (%d tokens)", cfg.PadID, len(canon))
	}
	seenLayer := map[int]bool{}
	for _, l := range cfg.LayerIDs {
		if l < 0 || seenLayer[l] {
			return nil, fmt.Errorf("engram: invalid or repeated layer id %d", l)
		}
		seenLayer[l] = true
	}
	// The hash products w·M must not overflow int64; that holds when every
	// canonical id is below CompressedVocab (M ≤ INT64_MAX/CompressedVocab).
	maxC := int32(-1)
	for t, c := range canon {
		if c < 0 || int(c) >= cfg.CompressedVocab {
			return nil, fmt.Errorf("engram: canonical id %d of token %d outside [0, %d)", c, t, cfg.CompressedVocab)
		}
		maxC = max(maxC, c)
	}
	if int(maxC)+1 != cfg.CompressedVocab {
		return nil, fmt.Errorf("engram: canonical map has %d ids, config says %d", maxC+1, cfg.CompressedVocab)
	}
	a := &Addresser{cfg: cfg, canon: canon, padC: int64(canon[cfg.PadID])}
	used := map[int64]bool{}
	cols := (cfg.MaxNgram - 1) * cfg.Heads
	for _, id := range cfg.LayerIDs {
		m, err := Multipliers(id, cfg.CompressedVocab, cfg.MaxNgram)
		if err != nil {
			return nil, err
		}
		L := layer{mult: m, primes: make([]int64, 0, cols), offsets: make([]int64, cols)}
		for range cfg.MaxNgram - 1 {
			// Each order restarts at VocabSize-1 and skips primes already
			// taken by any layer or order; the result is the global sequence
			// of primes above VocabSize-1 handed out in order.
			p := int64(cfg.VocabSize - 1)
			for range cfg.Heads {
				p = nextPrime(p)
				for used[p] {
					p = nextPrime(p)
				}
				used[p] = true
				L.primes = append(L.primes, p)
			}
		}
		var off int64
		for c, p := range L.primes {
			L.offsets[c] = off
			off += p
		}
		a.layers = append(a.layers, L)
	}
	return a, nil
}

// Config returns the addresser's configuration.
func (a *Addresser) Config() Config { return a.cfg }

// Primes returns the moduli of a layer (by index into Config.LayerIDs),
// ordered by n-gram order then head.
func (a *Addresser) Primes(layer int) []int64 { return append([]int64(nil), a.layers[layer].primes...) }

// TableRows returns the number of rows of a layer's table (the sum of its
// primes, engram_num_embeddings).
func (a *Addresser) TableRows(layer int) int64 {
	var s int64
	for _, p := range a.layers[layer].primes {
		s += p
	}
	return s
}

// nextPrime returns the smallest prime greater than n (n < 2^40).
func nextPrime(n int64) int64 {
	for p := n + 1; ; p++ {
		if isPrime(p) {
			return p
		}
	}
}

func isPrime(n int64) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for f := int64(3); f*f <= n; f += 2 {
		if n%f == 0 {
			return false
		}
	}
	return true
}

// State is one sequence's Engram history: the compressed ids and dead
// flags of the last MaxNgram-1 positions. It survives chunked prefill
// (feed tokens in order, in any chunking) and can be cloned for beam
// search. Not safe for concurrent use.
type State struct {
	a    *Addresser
	pos  int64
	hist []int64 // compressed ids, hist[0] = previous position
	dead []bool
}

// NewState starts an empty sequence (position 0).
func (a *Addresser) NewState() *State {
	n := a.cfg.MaxNgram - 1
	return &State{a: a, hist: make([]int64, n), dead: make([]bool, n)}
}

// Clone returns an independent copy of the state.
func (s *State) Clone() *State {
	return &State{a: s.a, pos: s.pos, hist: append([]int64(nil), s.hist...), dead: append([]bool(nil), s.dead...)}
}

// Position returns the position the next token will take.
func (s *State) Position() int64 { return s.pos }

// Push adds the token at the next position and returns, for every Engram
// layer (in Config.LayerIDs order), its (MaxNgram-1)·Heads row ids ordered
// by n-gram order then head. dead marks a token that blocks Engram history
// (image-span tokens): it and everything older read as pad.
func (s *State) Push(token int, dead bool) ([][]int64, error) {
	out := make([][]int64, len(s.a.layers))
	for i := range out {
		out[i] = make([]int64, (s.a.cfg.MaxNgram-1)*s.a.cfg.Heads)
	}
	return out, s.PushInto(out, token, dead)
}

// PushInto is Push writing into caller-owned slices (len(dst) layers, each
// (MaxNgram-1)·Heads long), so decoding allocates nothing.
func (s *State) PushInto(dst [][]int64, token int, dead bool) error {
	a := s.a
	if token < 0 || token >= len(a.canon) {
		return fmt.Errorf("engram: token id %d outside the canonical map (%d tokens)", token, len(a.canon))
	}
	cols := (a.cfg.MaxNgram - 1) * a.cfg.Heads
	if len(dst) != len(a.layers) {
		return fmt.Errorf("engram: %d output layers, want %d", len(dst), len(a.layers))
	}
	for _, d := range dst {
		if len(d) != cols {
			return fmt.Errorf("engram: output row slice of %d, want %d", len(d), cols)
		}
	}
	n := a.cfg.MaxNgram
	c := int64(a.canon[token])
	// Window w[s] for shift s: once a position is out of range or dead,
	// it and every older slot read as pad.
	var wbuf [16]int64
	w := wbuf[:n]
	blocked := dead
	w[0] = c
	if blocked {
		w[0] = a.padC
	}
	for sh := 1; sh < n; sh++ {
		blocked = blocked || s.pos < int64(sh) || s.dead[sh-1]
		if blocked {
			w[sh] = a.padC
		} else {
			w[sh] = s.hist[sh-1]
		}
	}
	for li, L := range a.layers {
		h := w[0] * L.mult[0]
		for i := 1; i < n; i++ {
			h ^= w[i] * L.mult[i]
			for j := range a.cfg.Heads {
				col := (i-1)*a.cfg.Heads + j
				dst[li][col] = h%L.primes[col] + L.offsets[col]
			}
		}
	}
	// Shift the history: the newest position goes to slot 0.
	copy(s.hist[1:], s.hist[:len(s.hist)-1])
	copy(s.dead[1:], s.dead[:len(s.dead)-1])
	s.hist[0], s.dead[0] = c, dead
	if s.pos == math.MaxInt64 {
		return errors.New("engram: position overflow")
	}
	s.pos++
	return nil
}
