// Package enginetest provides a fake engine.Runner for tests: a
// deterministic "model" whose logits are a hash of the tokens consumed so
// far, so any chunking of a sequence gives the same logits, at no cost.
package enginetest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Config returns a small V4-shaped configuration (vocabulary 512, BOS 0,
// EOS 1, 4 layers: window, window, CSA, HCA).
func Config() checkpoint.Config {
	return checkpoint.Config{Arch: checkpoint.ArchV4, Dim: 64, Layers: 4, Heads: 2, HeadDim: 32, Window: 16,
		VocabSize: 512, MaxPositions: 4096, CompressRatio: []int{0, 0, 4, 128}, IndexHeadDim: 16, BOS: 0, EOS: 1}
}

// Runner is the fake model.
type Runner struct {
	Cfg checkpoint.Config
	// StepDelay is slept in every Forward or ForwardBatch call;
	// TokenDelay per token.
	StepDelay, TokenDelay time.Duration
	// OnForward, when set, runs inside Forward (on the scheduler
	// goroutine) with the sequence id and its position before the call.
	OnForward func(seq int64, pos, n int)
	// OnBatch, when set, runs at the start of every ForwardBatch (Forward
	// included) with the number of sequences and tokens in it.
	OnBatch func(seqs, tokens int)
	// Fail, when set, makes a call fail, before it changes anything, if
	// one of its sequences is at a position Fail accepts.
	Fail func(seq int64, pos int) bool
	// EOSBias, when nonzero, is added to the EOS logit.
	EOSBias float32
	// Force, when set, may name a token to favour overwhelmingly in the
	// logits computed at sequence position pos (tokens consumed).
	Force func(pos int) (int, bool)

	plan     engine.MemoryPlan
	once     sync.Once
	nextSeq  atomic.Int64
	forwards sync.Map // seq id → *atomic.Int64
	active   atomic.Int64
}

// NewRunner returns a fake runner on Config().
func NewRunner() *Runner { return &Runner{Cfg: Config()} }

// Seq is the fake's sequence.
type Seq struct {
	ID   int64
	h    uint64
	pos  int
	plan *engine.MemoryPlan
	next *atomic.Int64 // the runner's id counter
}

// Pos implements engine.Sequence.
func (s *Seq) Pos() int { return s.pos }

// Bytes implements engine.Sequence, following the memory plan.
func (s *Seq) Bytes() int { return int(s.plan.SeqBytes(s.pos)) }

// Clone implements engine.Cloner: the copy has its own id.
func (s *Seq) Clone() engine.Sequence {
	c := *s
	c.ID = s.next.Add(1)
	return &c
}

// Config implements engine.Runner.
func (r *Runner) Config() checkpoint.Config { return r.Cfg }

// NewSequence implements engine.Runner.
func (r *Runner) NewSequence() engine.Sequence {
	r.once.Do(func() { r.plan, _ = engine.NewMemoryPlan(r.Cfg, 0) })
	return &Seq{ID: r.nextSeq.Add(1), h: 0x9E3779B97F4A7C15, plan: &r.plan, next: &r.nextSeq}
}

// Forwards is how many forward passes sequence id has taken part in.
func (r *Runner) Forwards(id int64) int64 {
	if v, ok := r.forwards.Load(id); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// Concurrent reports whether Forward was ever entered concurrently (it
// must not be).
func (r *Runner) Concurrent() bool { return r.active.Load() < 0 }

func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// Forward implements engine.Runner.
func (r *Runner) Forward(seq engine.Sequence, tokens []int, engram [][][]int64) ([]float32, error) {
	out, err := r.ForwardBatch([]engine.BatchItem{{Seq: seq, Tokens: tokens, Engram: engram}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ForwardBatch implements engine.Runner: like a model, it costs StepDelay
// once per call and TokenDelay per token, so batching pays. OnForward runs
// for every item, in order.
func (r *Runner) ForwardBatch(items []engine.BatchItem) ([][]float32, error) {
	seqs := make([]*Seq, len(items))
	seen := map[*Seq]bool{}
	ntok := 0
	for i, it := range items {
		s, ok := it.Seq.(*Seq)
		if !ok {
			return nil, errors.New("enginetest: foreign sequence")
		}
		if seen[s] {
			return nil, errors.New("enginetest: sequence twice in one batch")
		}
		seen[s] = true
		for _, t := range it.Tokens {
			if t < 0 || t >= r.Cfg.VocabSize {
				return nil, errors.New("enginetest: token outside the vocabulary")
			}
		}
		if r.Fail != nil && r.Fail(s.ID, s.pos) {
			return nil, fmt.Errorf("enginetest: sequence %d fails at position %d", s.ID, s.pos)
		}
		seqs[i] = s
		ntok += len(it.Tokens)
	}
	if r.OnBatch != nil {
		r.OnBatch(len(items), ntok)
	}
	if r.active.Add(1) != 1 {
		r.active.Store(math.MinInt32) // remember the overlap
	}
	defer r.active.Add(-1)
	for i, it := range items {
		v, _ := r.forwards.LoadOrStore(seqs[i].ID, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		if r.OnForward != nil {
			r.OnForward(seqs[i].ID, seqs[i].pos, len(it.Tokens))
		}
	}
	if d := r.StepDelay + time.Duration(ntok)*r.TokenDelay; d > 0 {
		time.Sleep(d)
	}
	out := make([][]float32, len(items))
	for i, it := range items {
		out[i] = r.consume(seqs[i], it.Tokens)
	}
	return out, nil
}

// consume advances s by tokens and returns the logits after them.
func (r *Runner) consume(s *Seq, tokens []int) []float32 {
	for _, t := range tokens {
		s.h = mix(s.h ^ uint64(t))
	}
	s.pos += len(tokens)
	logits := make([]float32, r.Cfg.VocabSize)
	for i := range logits {
		logits[i] = float32(int64(mix(s.h+uint64(i))>>40)%8000) / 1000
	}
	logits[r.Cfg.EOS] += r.EOSBias
	if r.Force != nil {
		if t, ok := r.Force(s.pos); ok && t >= 0 && t < len(logits) {
			logits[t] += 1000
		}
	}
	return logits
}
