package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
)

// Seq is a sequence whose tokens the client chooses (the websocket's split
// mode: the edge samples in the browser). The engine only runs its forward
// passes, in turn with every other session, chunked like prompts.
type Seq struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelFunc
	s      *session
	done   chan Event
}

// StepResult is the answer to one Seq step.
type StepResult struct {
	Logits  []float32 // of the last token
	Pos     int       // tokens consumed after the step
	Queued  time.Duration
	Compute time.Duration // forward time of this step's chunks
	// Trace is what the model did for the step's last token, when the step
	// asked for it and the runner can tell (nil otherwise).
	Trace *model.Trace
}

type rawStep struct {
	s      *session
	ctx    context.Context
	pos    int
	tokens []int
	engram [][][]int64
	trace  *model.Trace
	reply  chan rawReply

	done      int // tokens already run
	submitted time.Time
	started   time.Time
	compute   time.Duration
}

type rawReply struct {
	res StepResult
	err error
}

// ErrRewind is returned by Seq.Step for a position other than the current
// one or 0: the caches cannot be cut back yet.
var ErrRewind = errors.New("engine: the sequence can only continue at its current position or restart at 0")

// OpenSeq opens a client-driven sequence; it lives until Close or until
// ctx ends.
func (e *Engine) OpenSeq(ctx context.Context) (*Seq, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &session{id: fmt.Sprintf("seq-%d", e.nextID.Add(1)), ctx: ctx, raw: true, out: make(chan Event, 1), submitted: time.Now()}
	q := &Seq{e: e, ctx: ctx, cancel: cancel, s: s, done: s.out}
	select {
	case e.rawCh <- &rawStep{s: s}: // registration
	case <-e.quit:
		cancel()
		return nil, ErrClosed
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("engine: open sequence: %w", ctx.Err())
	}
	return q, nil
}

// Step appends tokens at position pos (0 restarts the sequence) and
// returns the logits after the last one. Steps of one Seq must not run
// concurrently.
func (q *Seq) Step(ctx context.Context, pos int, tokens []int, engram [][][]int64) (StepResult, error) {
	return q.StepTrace(ctx, pos, tokens, engram, false)
}

// StepTrace is Step that, with trace, also returns what the model did for
// the last token (StepResult.Trace).
func (q *Seq) StepTrace(ctx context.Context, pos int, tokens []int, engram [][][]int64, trace bool) (StepResult, error) {
	if len(tokens) == 0 {
		return StepResult{}, errors.New("engine: step without tokens")
	}
	for i, t := range tokens {
		if t < 0 || t >= q.e.vocab {
			return StepResult{}, fmt.Errorf("engine: step token %d at index %d outside the vocabulary [0,%d)", t, i, q.e.vocab)
		}
	}
	if pos < 0 || pos+len(tokens) > q.e.ctxLimit {
		return StepResult{}, &AdmissionError{Reason: "context", PromptTokens: pos + len(tokens), ContextLimit: q.e.ctxLimit}
	}
	st := &rawStep{s: q.s, ctx: ctx, pos: pos, tokens: tokens, engram: engram, reply: make(chan rawReply, 1), submitted: time.Now()}
	if trace {
		st.trace = &model.Trace{}
	}
	select {
	case q.e.rawCh <- st:
	case <-ctx.Done():
		return StepResult{}, ctx.Err()
	case <-q.ctx.Done():
		return StepResult{}, fmt.Errorf("engine: sequence closed: %w", q.ctx.Err())
	case <-q.e.quit:
		return StepResult{}, ErrClosed
	}
	select {
	case r := <-st.reply:
		return r.res, r.err
	case <-q.e.done:
		return StepResult{}, ErrClosed
	}
}

// Close frees the sequence's cache (within one scheduler round).
func (q *Seq) Close() { q.cancel() }

// Done is closed once the engine has freed the sequence.
func (q *Seq) Done() <-chan Event { return q.done }

// takeRaw handles a registration or a step arriving on rawCh (scheduler).
func (e *Engine) takeRaw(st *rawStep) {
	s := st.s
	if st.reply == nil { // registration
		s.admitted = time.Now()
		e.active = append(e.active, s)
		return
	}
	if s.out == nil { // already finished
		st.reply <- rawReply{err: fmt.Errorf("engine: sequence closed: %w", context.Canceled)}
		return
	}
	s.steps = append(s.steps, st)
}

// startRaw validates the head step of a raw session against position and
// budget; false when it was answered with an error.
func (e *Engine) startRaw(s *session) bool {
	st := s.steps[0]
	if !st.started.IsZero() {
		return true
	}
	fail := func(err error) bool {
		st.reply <- rawReply{err: err}
		s.steps = s.steps[1:]
		return false
	}
	if err := st.ctx.Err(); err != nil {
		return fail(err)
	}
	if st.pos == 0 && s.fed > 0 {
		e.reserved -= s.reserve
		s.reserve, s.seq, s.fed, s.tokens = 0, nil, 0, s.tokens[:0]
	}
	if st.pos != s.fed {
		return fail(fmt.Errorf("%w (asked %d, at %d)", ErrRewind, st.pos, s.fed))
	}
	need := e.plan.SeqBytes(s.fed + len(st.tokens))
	for e.reserved+e.prefix.bytes+need-s.reserve > e.cfg.CacheBudget && e.prefix.evictOldest() {
	}
	if e.reserved+e.prefix.bytes+need-s.reserve > e.cfg.CacheBudget {
		return fail(&AdmissionError{Reason: "memory", PromptTokens: s.fed + len(st.tokens), ContextLimit: e.ctxLimit,
			NeedBytes: need, BudgetBytes: e.cfg.CacheBudget - (e.reserved - s.reserve)})
	}
	e.reserved += need - s.reserve
	s.reserve = need
	if s.seq == nil {
		s.seq = e.r.NewSequence()
	}
	st.started = time.Now()
	return true
}

// prepareRaw attaches the Engram rows (and, on the step's last chunk, the
// trace) to a chunk of a raw session's head step; false when the step was
// answered with an error instead.
func (e *Engine) prepareRaw(w *work) bool {
	s := w.s
	st := s.steps[0]
	if st.engram != nil {
		w.engram = st.engram[st.done : st.done+len(w.tokens)]
	} else if e.engram != nil {
		st.reply <- rawReply{err: errors.New("engine: this model needs Engram rows with every step")}
		s.steps = s.steps[1:]
		return false
	}
	if _, canTrace := e.r.(TracingRunner); st.trace != nil && canTrace && st.done+len(w.tokens) == len(st.tokens) {
		w.trace = st.trace
	}
	return true
}

// afterRaw takes the result of one chunk of a raw session's head step; dt
// is the pass's time, share this chunk's part of it.
func (e *Engine) afterRaw(w work, logits []float32, err error, dt, share time.Duration) {
	s := w.s
	st := s.steps[0]
	tokens := w.tokens
	// The client waited for the whole pass.
	st.compute += dt
	if err != nil {
		// The sequence is in an unknown state: drop it.
		st.reply <- rawReply{err: err}
		s.steps = s.steps[1:]
		e.reserved -= s.reserve
		s.reserve, s.seq, s.fed, s.tokens = 0, nil, 0, s.tokens[:0]
		return
	}
	st.done += len(tokens)
	s.fed += len(tokens)
	s.tokens = append(s.tokens, tokens...)
	if len(tokens) > 1 {
		e.stats.addPrefill(len(tokens), share)
	} else {
		e.stats.addDecode(share)
	}
	if st.done == len(st.tokens) {
		res := StepResult{Logits: logits, Pos: s.fed, Queued: st.started.Sub(st.submitted), Compute: st.compute}
		if w.trace != nil {
			res.Trace = w.trace
		}
		st.reply <- rawReply{res: res}
		s.steps = s.steps[1:]
	}
}

// EngramPerToken is how many Engram row addresses a client-driven step
// carries per token: for every Engram layer, one per head and n-gram order
// (0 for models without Engram).
func (e *Engine) EngramPerToken() int {
	c := e.r.Config()
	if len(c.EngramLayers) == 0 {
		return 0
	}
	return len(c.EngramLayers) * max(c.EngramMaxNgram-1, 1) * c.EngramHeads
}

// SplitEngram turns token-major wire addresses (EngramPerToken per token)
// into the per-token, per-layer rows Forward takes.
func (e *Engine) SplitEngram(flat []int64, tokens int) [][][]int64 {
	c := e.r.Config()
	layers := len(c.EngramLayers)
	if layers == 0 || tokens == 0 {
		return nil
	}
	per := len(flat) / tokens
	each := per / layers
	out := make([][][]int64, tokens)
	for t := range out {
		out[t] = make([][]int64, layers)
		for l := range out[t] {
			row := make([]int64, each)
			for i := range row {
				row[i] = flat[t*per+l*each+i]
			}
			out[t][l] = row
		}
	}
	return out
}

// Layers is the number of decoder layers (each has an mHC mixing matrix to
// report).
func (e *Engine) Layers() int { return e.r.Config().Layers }

// IndexedLayers lists the layers whose lightning indexer chooses which
// compressed entries a token attends (V4 CSA layers, V4.1 compressed layers),
// the layers a client can draw selections for.
func (e *Engine) IndexedLayers() []int {
	c := e.r.Config()
	var out []int
	for l := 0; l < c.Layers && l < len(c.CompressRatio); l++ {
		r := c.CompressRatio[l]
		if (c.Arch == checkpoint.ArchV4 && r == 4) || (c.Arch == checkpoint.ArchV41 && r > 0) {
			out = append(out, l)
		}
	}
	return out
}
