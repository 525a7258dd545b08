package engine

import (
	"errors"
	"fmt"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Sequence is one sequence's caches, opaque to the engine.
type Sequence interface {
	// Pos is the number of tokens the sequence has consumed.
	Pos() int
	// Bytes is the memory its caches hold now.
	Bytes() int
}

// Cloner is implemented by sequences whose caches can be copied. The engine
// copies a live session's caches for a new request whose prompt extends the
// tokens that session has consumed (prefix reuse of live sessions).
type Cloner interface {
	// Clone returns an independent copy of the sequence.
	Clone() Sequence
}

// Runner computes forward passes. It is what the engine needs from a model;
// *model.Model fits through NewModelRunner. The engine calls Forward and
// ForwardBatch from one goroutine only.
type Runner interface {
	// Config is the model's configuration.
	Config() checkpoint.Config
	// NewSequence returns empty caches.
	NewSequence() Sequence
	// Forward consumes tokens (with their Engram rows on V4.1, else nil)
	// into seq and returns the logits of the last one.
	Forward(seq Sequence, tokens []int, engram [][][]int64) ([]float32, error)
	// ForwardBatch does what Forward does for every item, in one pass
	// where the runner can (a model reads its weights once for all
	// items), and returns each item's logits of its last token. The
	// items' sequences are distinct. On error no sequence has changed, so
	// the caller may retry the items one by one to find the faulty one.
	ForwardBatch(items []BatchItem) ([][]float32, error)
}

// BatchItem is one sequence's chunk in a ForwardBatch call.
type BatchItem struct {
	Seq    Sequence
	Tokens []int
	Engram [][][]int64 // per token and Engram layer (V4.1), else nil
	// Trace, when non-nil, is filled with what the model did for the
	// item's last token by runners that can tell (TracingRunner).
	Trace *model.Trace
}

// NewModelRunner adapts a loaded model to the Runner interface.
func NewModelRunner(m *model.Model) Runner { return modelRunner{m} }

type modelRunner struct{ m *model.Model }

type modelSeq struct{ st *model.State }

// Pos implements Sequence.
func (s modelSeq) Pos() int { return s.st.Pos }

// Bytes implements Sequence.
func (s modelSeq) Bytes() int { return s.st.Bytes() }

// Clone implements Cloner.
func (s modelSeq) Clone() Sequence { return modelSeq{s.st.Clone()} }

// Config implements Runner.
func (r modelRunner) Config() checkpoint.Config { return r.m.Config }

// NewSequence implements Runner.
func (r modelRunner) NewSequence() Sequence { return modelSeq{r.m.NewState()} }

// Forward implements Runner.
func (r modelRunner) Forward(seq Sequence, tokens []int, engram [][][]int64) ([]float32, error) {
	s, ok := seq.(modelSeq)
	if !ok {
		return nil, errors.New("engine: sequence does not belong to this model")
	}
	logits, err := r.m.Forward(s.st, model.Input{Tokens: tokens, Engram: engram}, model.Options{})
	if err != nil {
		return nil, fmt.Errorf("forward at position %d: %w", s.st.Pos, err)
	}
	return logits, nil
}

// ForwardBatch implements Runner with one model.ForwardBatch call.
func (r modelRunner) ForwardBatch(items []BatchItem) ([][]float32, error) {
	sts := make([]*model.State, len(items))
	ins := make([]model.Input, len(items))
	opts := make([]model.Options, len(items))
	for i, it := range items {
		s, ok := it.Seq.(modelSeq)
		if !ok {
			return nil, errors.New("engine: sequence does not belong to this model")
		}
		sts[i], ins[i], opts[i] = s.st, model.Input{Tokens: it.Tokens, Engram: it.Engram}, model.Options{Trace: it.Trace}
	}
	logits, err := r.m.ForwardBatch(sts, ins, opts)
	if err != nil {
		if len(items) == 1 {
			return nil, fmt.Errorf("forward at position %d: %w", sts[0].Pos, err)
		}
		return nil, err
	}
	return logits, nil
}

// TracingRunner is a Runner that can also report what the model did for the
// last token of a call (the compressed entries each layer attended, the mHC
// mixing matrices), for clients that draw it.
type TracingRunner interface {
	ForwardTrace(seq Sequence, tokens []int, engram [][][]int64, tr *model.Trace) ([]float32, error)
}

// ForwardTrace implements TracingRunner.
func (r modelRunner) ForwardTrace(seq Sequence, tokens []int, engram [][][]int64, tr *model.Trace) ([]float32, error) {
	s, ok := seq.(modelSeq)
	if !ok {
		return nil, errors.New("engine: sequence does not belong to this model")
	}
	logits, err := r.m.Forward(s.st, model.Input{Tokens: tokens, Engram: engram}, model.Options{Trace: tr})
	if err != nil {
		return nil, fmt.Errorf("forward at position %d: %w", s.st.Pos, err)
	}
	return logits, nil
}
