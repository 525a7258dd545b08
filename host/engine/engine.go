// Package engine owns a model and runs many generation requests on it: each
// request is a session with its own caches; one scheduler goroutine runs, in
// rounds, the decode steps of all active sessions in one batched forward
// pass (weights are read once per round, not once per session), and cuts
// long prompts into chunks that ride along with the others' decode steps.
// Admission follows a memory plan computed from the model configuration,
// finished sequences are kept for prefix reuse, and a cancelled context
// stops its session within one step.
package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/edgeseek/edgeseek/model"
)

// Config tunes an Engine. Zero fields take the defaults noted.
type Config struct {
	// CacheBudget bounds the bytes held by all sequence caches, the prefix
	// cache included (default 1 GiB).
	CacheBudget int64
	// PrefixCacheBytes bounds the finished sequences kept for prefix reuse
	// (default CacheBudget/4; negative disables reuse).
	PrefixCacheBytes int64
	// PrefillChunk is the most prompt tokens one forward pass takes
	// (default 64).
	PrefillChunk int
	// PrefillPerRound is the most prompt tokens computed per scheduler
	// round, across sessions (default PrefillChunk), so decode steps keep
	// flowing while prompts are read.
	PrefillPerRound int
	// MaxSessions bounds the sessions running at once (default 64).
	MaxSessions int
	// MaxQueue bounds the requests waiting for admission (default 256);
	// past it Submit fails with ErrBusy.
	MaxQueue int
	// ContextLimit caps prompt plus generated tokens (default the model's
	// MaxPositions, or 4096 when the config has none).
	ContextLimit int
	// DefaultMaxTokens applies when a request sets no MaxTokens (default
	// 4096; negative: up to the context limit). Such requests are also
	// shortened to fit the cache budget and end with FinishLength;
	// explicit ones that do not fit are refused.
	DefaultMaxTokens int
	// EventBuffer is each stream's channel capacity (default 64). A
	// session whose consumer falls behind is paused, never dropped.
	EventBuffer int
}

func (c *Config) defaults(modelMax int) {
	if c.CacheBudget <= 0 {
		c.CacheBudget = 1 << 30
	}
	if c.PrefixCacheBytes == 0 {
		c.PrefixCacheBytes = c.CacheBudget / 4
	}
	if c.PrefillChunk <= 0 {
		c.PrefillChunk = 64
	}
	if c.PrefillPerRound <= 0 {
		c.PrefillPerRound = c.PrefillChunk
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 64
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 256
	}
	if c.ContextLimit <= 0 {
		c.ContextLimit = modelMax
		if c.ContextLimit <= 0 {
			c.ContextLimit = 4096
		}
	}
	if c.DefaultMaxTokens == 0 {
		c.DefaultMaxTokens = 4096
	}
	if c.EventBuffer < 4 {
		c.EventBuffer = 64
	}
}

// Errors returned by Submit.
var (
	// ErrClosed: the engine is shut down.
	ErrClosed = errors.New("engine: closed")
	// ErrBusy: the admission queue is full; retry later.
	ErrBusy = errors.New("engine: too many queued requests")
)

// Request is one generation request.
type Request struct {
	// ID names the request in logs (default a sequence number).
	ID string
	// Prompt is the tokenized prompt (BOS and chat template included).
	Prompt []int
	// MaxTokens bounds the generated tokens; 0 uses Config.DefaultMaxTokens.
	MaxTokens int
	// Sampling configures the sampler (seed included).
	Sampling SamplerParams
	// StopTokens end generation when sampled, besides the model's EOS;
	// the token is counted but its text is not emitted.
	StopTokens []int
	// IgnoreEOS keeps generating past the EOS token.
	IgnoreEOS bool
	// Stop lists stop sequences; the text up to the first one is emitted.
	Stop []string
}

// Stream is an admitted request. Read Events until it is closed; the last
// event is EventDone.
type Stream struct {
	ID           string
	Events       <-chan Event
	PromptTokens int
	MaxTokens    int // the effective limit
}

// Engine schedules requests on one model.
type Engine struct {
	r        Runner
	edge     Edge
	engram   EngramEdge
	cfg      Config
	log      zerolog.Logger
	plan     MemoryPlan
	eos      int
	vocab    int
	ctxLimit int

	submit    chan *session
	rawCh     chan *rawStep
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	queued    atomic.Int64 // submitted, not yet admitted
	nextID    atomic.Uint64

	// Owned by the scheduler goroutine.
	pending  []*session
	active   []*session
	prefix   *prefixCache
	reserved int64
	rr       int

	stats statsBox
}

// New builds an engine around a runner and an edge and starts its
// scheduler; Close stops it.
func New(r Runner, edge Edge, cfg Config, log zerolog.Logger) (*Engine, error) {
	if r == nil || edge == nil {
		return nil, errors.New("engine: runner and edge are required")
	}
	mc := r.Config()
	if mc.VocabSize <= 0 {
		return nil, fmt.Errorf("engine: model vocabulary size %d", mc.VocabSize)
	}
	cfg.defaults(mc.MaxPositions)
	e := &Engine{r: r, edge: edge, cfg: cfg, log: log, eos: mc.EOS, vocab: mc.VocabSize, ctxLimit: cfg.ContextLimit,
		submit: make(chan *session), rawCh: make(chan *rawStep), quit: make(chan struct{}), done: make(chan struct{})}
	if len(mc.EngramLayers) > 0 {
		ee, ok := edge.(EngramEdge)
		if !ok {
			return nil, errors.New("engine: the model has Engram layers but the edge computes no Engram rows")
		}
		e.engram = ee
	}
	plan, err := NewMemoryPlan(mc, int64(r.NewSequence().Bytes()))
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.plan = plan
	if plan.SeqBytes(1) > cfg.CacheBudget {
		return nil, fmt.Errorf("engine: cache budget %d bytes is smaller than one sequence (%d bytes)", cfg.CacheBudget, plan.SeqBytes(1))
	}
	pmax := cfg.PrefixCacheBytes
	if pmax < 0 {
		pmax = 0
	}
	e.prefix = newPrefixCache(pmax)
	e.stats.init(cfg.CacheBudget)
	log.Info().Int64("cache_budget", cfg.CacheBudget).Int("context_limit", e.ctxLimit).Str("plan", plan.String()).Msg("engine memory plan")
	go e.loop()
	return e, nil
}

// Plan returns the memory plan.
func (e *Engine) Plan() MemoryPlan { return e.plan }

// Edge returns the engine's edge (tokenizer, chat encoding, sampler).
func (e *Engine) Edge() Edge { return e.edge }

// ContextLimit is the largest prompt plus generated token count.
func (e *Engine) ContextLimit() int { return e.ctxLimit }

// Vocab is the model's vocabulary size.
func (e *Engine) Vocab() int { return e.vocab }

// Close stops the scheduler; running requests end with FinishError and
// ErrClosed. It waits for the scheduler to exit and is safe to call twice.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { close(e.quit) })
	<-e.done
	return nil
}

// Submit validates and admits a request. It fails at once, with the
// numbers, when the request can never fit (*AdmissionError); otherwise the
// request waits for room in the queue. ctx governs the whole request:
// when it ends, the session stops within one step and frees its cache.
func (e *Engine) Submit(ctx context.Context, req Request) (*Stream, error) {
	n := len(req.Prompt)
	if n == 0 {
		return nil, errors.New("engine: empty prompt")
	}
	for i, t := range req.Prompt {
		if t < 0 || t >= e.vocab {
			return nil, fmt.Errorf("engine: prompt token %d at index %d outside the vocabulary [0,%d)", t, i, e.vocab)
		}
	}
	if req.MaxTokens < 0 {
		return nil, fmt.Errorf("engine: max_tokens %d must be >= 0", req.MaxTokens)
	}
	maxTok := req.MaxTokens
	explicit := maxTok > 0
	if !explicit {
		maxTok = e.ctxLimit - n
		if d := e.cfg.DefaultMaxTokens; d > 0 && d < maxTok {
			maxTok = d
		}
		if fit := e.plan.MaxTokensWithin(e.cfg.CacheBudget, e.ctxLimit) - n; fit < maxTok {
			maxTok = fit
		}
		if maxTok < 1 {
			maxTok = 1
		}
	}
	if n+maxTok > e.ctxLimit {
		e.stats.refused.Add(1)
		return nil, &AdmissionError{Reason: "context", PromptTokens: n, MaxTokens: maxTok, ContextLimit: e.ctxLimit,
			NeedBytes: e.plan.SeqBytes(n + maxTok), BudgetBytes: e.cfg.CacheBudget}
	}
	need := e.plan.SeqBytes(n + maxTok)
	if need > e.cfg.CacheBudget {
		e.stats.refused.Add(1)
		return nil, &AdmissionError{Reason: "memory", PromptTokens: n, MaxTokens: maxTok, ContextLimit: e.ctxLimit,
			NeedBytes: need, BudgetBytes: e.cfg.CacheBudget}
	}
	// The sampler parameters are checked now, by the engine's edge; a
	// request that gets an edge instance of its own (SessionEdges) opens it
	// when admitted, so that queued requests hold none.
	t0 := time.Now()
	smp, err := e.edge.NewSampler(req.Sampling)
	e.stats.edge.observe(time.Since(t0))
	if err != nil {
		return nil, fmt.Errorf("engine: sampler: %w", err)
	}
	var detok Detok
	var edgeReady chan struct{}
	if _, ok := e.edge.(SessionEdges); ok {
		release(smp)
		smp, edgeReady = nil, make(chan struct{})
	} else {
		detok = e.edge.NewDetok()
	}
	id := req.ID
	if id == "" {
		id = strconv.FormatUint(e.nextID.Add(1), 10)
	}
	stops := map[int]bool{}
	if !req.IgnoreEOS {
		stops[e.eos] = true
	}
	for _, t := range req.StopTokens {
		stops[t] = true
	}
	out := make(chan Event, e.cfg.EventBuffer)
	s := &session{id: id, ctx: ctx, req: req, maxTokens: maxTok, reserve: need,
		tokens: append(make([]int, 0, n+min(maxTok, 1024)), req.Prompt...), promptLen: n,
		sampler: smp, detok: detok, edgeReady: edgeReady, stop: newStopMatcher(req.Stop), stopTokens: stops,
		out: out, submitted: time.Now()}
	drop := func() {
		if edgeReady == nil {
			release(smp)
			release(detok)
		}
	}
	if e.queued.Add(1) > int64(e.cfg.MaxQueue) {
		e.queued.Add(-1)
		e.stats.refused.Add(1)
		drop()
		return nil, ErrBusy
	}
	select {
	case e.submit <- s:
	case <-ctx.Done():
		e.queued.Add(-1)
		drop()
		return nil, fmt.Errorf("engine: submit: %w", ctx.Err())
	case <-e.quit:
		e.queued.Add(-1)
		drop()
		return nil, ErrClosed
	}
	e.stats.requests.Add(1)
	return &Stream{ID: id, Events: out, PromptTokens: n, MaxTokens: maxTok}, nil
}

// release calls x's Release method, if it has one (samplers and
// detokenizers that hold objects inside an edge module).
func release(x any) {
	if r, ok := x.(interface{ Release() }); ok {
		r.Release()
	}
}

// openSessionEdge gives an admitted session its own edge instance, sampler
// and detokenizer, then closes s.edgeReady. It runs on its own goroutine
// (starting an instance takes milliseconds), so the scheduler keeps going;
// the session is not scheduled for a step that samples until it is ready.
func (e *Engine) openSessionEdge(s *session, se SessionEdges) {
	defer close(s.edgeReady)
	t0 := time.Now()
	defer func() { e.stats.edge.observe(time.Since(t0)) }()
	own, err := se.NewSessionEdge(s.ctx)
	if err != nil {
		s.edgeErr = fmt.Errorf("edge instance: %w", err)
		return
	}
	smp, err := own.NewSampler(s.req.Sampling)
	if err != nil {
		own.Close()
		s.edgeErr = fmt.Errorf("sampler: %w", err)
		return
	}
	s.ownEdge, s.sampler, s.detok = own, smp, own.NewDetok()
}

// edgeState reports whether s can sample now: ready, or waiting for its
// edge instance (openSessionEdge), or failed to get one.
func (s *session) edgeState() (ready bool, err error) {
	if s.edgeReady == nil {
		return true, nil
	}
	select {
	case <-s.edgeReady:
		return s.edgeErr == nil, s.edgeErr
	default:
		return false, nil
	}
}

// session is one request inside the scheduler.
type session struct {
	id         string
	ctx        context.Context
	req        Request
	maxTokens  int
	reserve    int64
	tokens     []int // prompt, then generated tokens
	promptLen  int
	fed        int // tokens consumed by seq
	cached     int // prompt tokens taken from the prefix cache
	seq        Sequence
	sampler    Sampler
	detok      Detok
	ownEdge    SessionEdge   // the request's own edge instance, or nil
	edgeReady  chan struct{} // closed once openSessionEdge has run; nil: shared edge
	edgeErr    error         // why openSessionEdge failed (read after edgeReady)
	edgeOpen   bool          // openSessionEdge was started (at admission)
	pick       *picked       // this round's sample, taken in parallel (sampleAll)
	stop       *stopMatcher
	stopTokens map[int]bool
	generated  int
	out        chan Event
	raw        bool       // client-driven (Seq)
	steps      []*rawStep // raw: queued steps, head first

	submitted, admitted, firstToken time.Time
	prefillComputed                 int
}

func (s *session) prefilling() bool { return s.fed < s.promptLen }

// room reports whether the consumer has space for one step's events (a
// token and the final event).
func (s *session) room() bool { return cap(s.out)-len(s.out) >= 2 }

// loop is the scheduler.
func (e *Engine) loop() {
	defer close(e.done)
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		if len(e.active) == 0 && len(e.pending) == 0 {
			e.publish()
			select {
			case s := <-e.submit:
				e.enqueue(s)
			case st := <-e.rawCh:
				e.takeRaw(st)
			case <-e.quit:
				e.shutdown()
				return
			}
		}
		e.drain()
		select {
		case <-e.quit:
			e.shutdown()
			return
		default:
		}
		e.reapPending()
		e.admit()
		worked := e.round()
		e.publish()
		if !worked && (len(e.active) > 0 || len(e.pending) > 0) {
			// Everybody waits: on a slow consumer (poll fast), on a
			// client-driven sequence's next step, or on room.
			wait := 50 * time.Millisecond
			for _, s := range e.active {
				if !s.raw {
					wait = time.Millisecond
					break
				}
			}
			idle.Reset(wait)
			select {
			case s := <-e.submit:
				e.enqueue(s)
			case st := <-e.rawCh:
				e.takeRaw(st)
			case <-idle.C:
			case <-e.quit:
				e.shutdown()
				return
			}
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
		}
	}
}

func (e *Engine) drain() {
	for {
		select {
		case s := <-e.submit:
			e.enqueue(s)
		case st := <-e.rawCh:
			e.takeRaw(st)
		default:
			return
		}
	}
}

func (e *Engine) enqueue(s *session) { e.pending = append(e.pending, s) }

// reapPending ends queued requests whose context is done.
func (e *Engine) reapPending() {
	kept := e.pending[:0]
	for _, s := range e.pending {
		if s.ctx.Err() != nil {
			e.queued.Add(-1)
			e.finish(s, &Result{Finish: FinishCancelled, Err: s.ctx.Err()}, "")
			continue
		}
		kept = append(kept, s)
	}
	clear(e.pending[len(kept):])
	e.pending = kept
}

// admit moves queued requests, in order, into the active set while they
// fit, taking a cached prefix when one matches and evicting old cached
// sequences when room is short.
func (e *Engine) admit() {
	for len(e.pending) > 0 && len(e.active) < e.cfg.MaxSessions {
		s := e.pending[0]
		pe := e.prefix.take(s.tokens[:s.promptLen])
		var live Sequence
		have := 0
		if pe != nil {
			have = len(pe.tokens)
		}
		if clone, n := e.liveClone(s.tokens[:s.promptLen], have); clone != nil {
			if pe != nil {
				e.prefix.put(pe.tokens, pe.seq)
				pe = nil
			}
			live, have = clone, n
		}
		for e.reserved+e.prefix.bytes+s.reserve > e.cfg.CacheBudget && e.prefix.evictOldest() {
		}
		if e.reserved+e.prefix.bytes+s.reserve > e.cfg.CacheBudget {
			if pe != nil { // give it back; it may serve this request later
				e.prefix.put(pe.tokens, pe.seq)
			}
			return // (a live clone is simply dropped)
		}
		e.pending = e.pending[1:]
		e.queued.Add(-1)
		e.reserved += s.reserve
		s.admitted = time.Now()
		switch {
		case pe != nil:
			s.seq, s.fed, s.cached = pe.seq, len(pe.tokens), len(pe.tokens)
			e.stats.cachedTokens.Add(uint64(s.cached))
		case live != nil:
			s.seq, s.fed, s.cached = live, have, have
			e.stats.cachedTokens.Add(uint64(s.cached))
		default:
			s.seq = e.r.NewSequence()
		}
		e.active = append(e.active, s)
		if s.edgeReady != nil {
			s.edgeOpen = true
			go e.openSessionEdge(s, e.edge.(SessionEdges))
		}
		e.log.Debug().Str("req", s.id).Int("prompt", s.promptLen).Int("cached", s.cached).Int("max_tokens", s.maxTokens).Msg("admitted")
	}
}

// liveClone copies the caches of the active hosted session that has consumed
// the longest strict prefix of prompt longer than atLeast tokens; nil when
// none has (or its sequences cannot be copied). It runs between rounds, when
// no sequence is in a forward pass.
func (e *Engine) liveClone(prompt []int, atLeast int) (Sequence, int) {
	var best *session
	for _, a := range e.active {
		if a.raw || a.seq == nil || a.fed <= atLeast || a.fed >= len(prompt) {
			continue
		}
		if _, ok := a.seq.(Cloner); !ok || !slices.Equal(a.tokens[:a.fed], prompt[:a.fed]) {
			continue
		}
		if best == nil || a.fed > best.fed {
			best = a
		}
	}
	if best == nil {
		return nil, 0
	}
	return best.seq.(Cloner).Clone(), best.fed
}

// work is one session's share of a round's forward pass: a decode token or
// a prompt chunk (hosted sessions), or a chunk of a client-driven step.
type work struct {
	s      *session
	tokens []int
	engram [][][]int64
	trace  *model.Trace // raw steps that asked for one, on their last chunk
}

// round runs one step of every runnable session, all in one batched
// forward pass; false when none was runnable.
func (e *Engine) round() bool {
	if len(e.active) == 0 {
		return false
	}
	if e.rr >= len(e.active) {
		e.rr = 0
	}
	var items []work
	prefillLeft := e.cfg.PrefillPerRound
	for i := range e.active {
		s := e.active[(e.rr+i)%len(e.active)]
		if err := s.ctx.Err(); err != nil {
			e.finish(s, &Result{Finish: FinishCancelled, Err: err}, "")
			continue
		}
		if s.raw {
			if len(s.steps) == 0 || !e.startRaw(s) {
				continue
			}
			st := s.steps[0]
			n := len(st.tokens) - st.done
			if n > 1 {
				if prefillLeft <= 0 {
					continue
				}
				n = min(n, e.cfg.PrefillChunk, prefillLeft)
				prefillLeft -= n
			}
			items = append(items, work{s: s, tokens: st.tokens[st.done : st.done+n]})
			continue
		}
		if !s.room() {
			continue
		}
		ready, err := s.edgeState()
		if err != nil {
			e.finish(s, &Result{Finish: FinishError, Err: err}, "")
			continue
		}
		if s.prefilling() {
			if prefillLeft <= 0 {
				continue
			}
			n := min(e.cfg.PrefillChunk, s.promptLen-s.fed, prefillLeft)
			if !ready && s.fed+n == s.promptLen {
				continue // the last chunk samples: wait for the edge instance
			}
			prefillLeft -= n
			items = append(items, work{s: s, tokens: s.tokens[s.fed : s.fed+n]})
			continue
		}
		if !ready {
			continue
		}
		items = append(items, work{s: s, tokens: s.tokens[s.fed : s.fed+1]})
	}
	e.rr++
	batch := make([]work, 0, len(items))
	for _, it := range items {
		if err := it.s.ctx.Err(); err != nil {
			e.finish(it.s, &Result{Finish: FinishCancelled, Err: err}, "")
			continue
		}
		var ok bool
		if it.s.raw {
			ok = e.prepareRaw(&it)
		} else {
			ok = e.prepare(&it)
		}
		if ok {
			batch = append(batch, it)
		}
	}
	if len(batch) > 0 {
		logits, errs, dt := e.forward(batch)
		total := 0
		for _, it := range batch {
			total += len(it.tokens)
		}
		e.sampleAll(batch, logits, errs)
		for i, it := range batch {
			// The pass's time is shared among its items by tokens, so the
			// prefill and decode totals add up to the forward time.
			share := dt * time.Duration(len(it.tokens)) / time.Duration(total)
			if it.s.raw {
				e.afterRaw(it, logits[i], errs[i], dt, share)
			} else {
				e.afterStep(it, logits[i], errs[i], share)
			}
		}
	}
	e.dropFinished()
	return len(items) > 0
}

// forward runs the items in one batched pass. When the pass fails (which
// leaves every sequence unchanged), each item is run alone, so that only
// the faulty ones fail.
func (e *Engine) forward(items []work) (logits [][]float32, errs []error, dt time.Duration) {
	bi := make([]BatchItem, len(items))
	for i, it := range items {
		bi[i] = BatchItem{Seq: it.s.seq, Tokens: it.tokens, Engram: it.engram, Trace: it.trace}
	}
	t0 := time.Now()
	logits, err := e.r.ForwardBatch(bi)
	errs = make([]error, len(items))
	switch {
	case err == nil && len(logits) != len(items):
		err = fmt.Errorf("runner returned %d results for %d sequences", len(logits), len(items))
		fallthrough
	case err != nil && len(items) == 1:
		logits, errs[0] = make([][]float32, 1), err
	case err != nil:
		logits = make([][]float32, len(items))
		for i := range bi {
			var l [][]float32
			if l, errs[i] = e.r.ForwardBatch(bi[i : i+1]); errs[i] == nil {
				logits[i] = l[0]
			}
		}
	}
	return logits, errs, time.Since(t0)
}

// dropFinished removes finished sessions from the active set.
func (e *Engine) dropFinished() {
	kept := e.active[:0]
	for _, s := range e.active {
		if s.out != nil {
			kept = append(kept, s)
		}
	}
	clear(e.active[len(kept):])
	e.active = kept
}

// prepare computes a hosted session's Engram rows for its work; false when
// the session ended instead.
func (e *Engine) prepare(w *work) bool {
	s := w.s
	if e.engram != nil {
		t0 := time.Now()
		var err error
		w.engram, err = e.engram.EngramRows(s.tokens[:s.fed+len(w.tokens)], s.fed)
		e.stats.edge.observe(time.Since(t0))
		if err != nil {
			e.finish(s, &Result{Finish: FinishError, Err: fmt.Errorf("engram rows: %w", err)}, "")
			return false
		}
	}
	return true
}

// afterStep takes a hosted session's forward result (dt is its share of
// the pass) and, after the prompt, samples one token.
func (e *Engine) afterStep(w work, logits []float32, err error, dt time.Duration) {
	s := w.s
	if err != nil {
		e.finish(s, &Result{Finish: FinishError, Err: err}, "")
		return
	}
	s.fed += len(w.tokens)
	if s.prefilling() || (s.generated == 0 && s.fed == s.promptLen) {
		e.stats.addPrefill(len(w.tokens), dt)
		s.prefillComputed += len(w.tokens)
	} else {
		e.stats.addDecode(dt)
	}
	if s.prefilling() {
		select {
		case s.out <- Event{Kind: EventPrefill, Prefilled: s.fed, PromptTokens: s.promptLen}:
		default: // progress is advisory; keep room for tokens
		}
		return
	}
	if len(logits) != e.vocab {
		e.finish(s, &Result{Finish: FinishError, Err: fmt.Errorf("runner returned %d logits for a vocabulary of %d", len(logits), e.vocab)}, "")
		return
	}
	p := s.pick
	s.pick = nil
	if p == nil {
		p = pickToken(s, logits)
	}
	e.stats.edge.observe(p.dur)
	if p.err != nil {
		e.finish(s, &Result{Finish: FinishError, Err: fmt.Errorf("sample: %w", p.err)}, "")
		return
	}
	ch := p.ch
	if s.generated == 0 {
		s.firstToken = time.Now()
	}
	s.generated++
	s.tokens = append(s.tokens, ch.ID)
	e.stats.generated.Add(1)
	var text, stopSeq string
	finish := ""
	if s.stopTokens[ch.ID] {
		finish = FinishStop
	} else {
		if p.detokErr != nil {
			e.finish(s, &Result{Finish: FinishError, Err: fmt.Errorf("detokenize: %w", p.detokErr)}, "")
			return
		}
		text, stopSeq = s.stop.push(p.piece)
		if stopSeq != "" {
			finish = FinishStop
		}
	}
	if finish == "" && (s.generated >= s.maxTokens || len(s.tokens) >= e.ctxLimit) {
		finish = FinishLength
	}
	s.out <- Event{Kind: EventToken, Token: ch, Text: text}
	if finish != "" {
		tail := ""
		if stopSeq == "" {
			tail, _ = s.stop.push(s.detok.Flush())
			tail += s.stop.flush()
		}
		e.finish(s, &Result{Finish: finish, StopSequence: stopSeq}, tail)
	}
}

// picked is a hosted session's token of one round and its text.
type picked struct {
	ch       Choice
	err      error // sampling failed
	piece    string
	detokErr error
	dur      time.Duration // edge time
}

// pickToken samples s's next token from logits and detokenizes it (unless
// it is a stop token). It touches only s's sampler and detokenizer, so
// different sessions' picks may run concurrently.
func pickToken(s *session, logits []float32) *picked {
	t := time.Now()
	p := &picked{}
	p.ch, p.err = s.sampler.Sample(logits, s.tokens)
	if p.err == nil && !s.stopTokens[p.ch.ID] {
		p.piece, p.detokErr = s.detok.Push(p.ch.ID)
	}
	p.dur = time.Since(t)
	return p
}

// sampleAll picks the tokens of the round's hosted sessions that sample
// now, in parallel (at most GOMAXPROCS at once), leaving each in s.pick for
// afterStep. Sessions whose edge instances are their own (SessionEdges)
// really run at the same time; on a shared edge the calls take turns.
func (e *Engine) sampleAll(batch []work, logits [][]float32, errs []error) {
	var jobs []int
	for i, it := range batch {
		s := it.s
		if !s.raw && errs[i] == nil && s.fed+len(it.tokens) >= s.promptLen && len(logits[i]) == e.vocab {
			jobs = append(jobs, i)
		}
	}
	if len(jobs) < 2 {
		return
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= len(jobs) {
					return
				}
				i := jobs[j]
				batch[i].s.pick = pickToken(batch[i].s, logits[i])
			}
		})
	}
	wg.Wait()
}

// finish ends a session: frees or keeps its cache, sends the final event
// and closes the stream.
func (e *Engine) finish(s *session, res *Result, tail string) {
	if s.out == nil {
		return
	}
	if s.raw && res.Finish == FinishCancelled {
		res.Finish, res.Err = FinishStop, nil // a closed sequence is a normal end
	}
	for _, st := range s.steps {
		st.reply <- rawReply{err: fmt.Errorf("engine: sequence ended: %w", res.Err)}
	}
	s.steps = nil
	if s.raw {
		e.reserved -= s.reserve
		s.seq = nil
	}
	if s.seq != nil {
		e.reserved -= s.reserve
		if res.Finish == FinishStop || res.Finish == FinishLength {
			e.prefix.put(s.tokens[:s.fed:s.fed], s.seq)
		}
		s.seq = nil
	}
	now := time.Now()
	res.Usage = Usage{PromptTokens: s.promptLen, CachedTokens: s.cached, CompletionTokens: s.generated}
	t := &res.Timings
	if !s.admitted.IsZero() {
		t.Queued = s.admitted.Sub(s.submitted)
		if !s.firstToken.IsZero() {
			t.Prefill = s.firstToken.Sub(s.admitted)
			t.Decode = now.Sub(s.firstToken)
		} else {
			t.Prefill = now.Sub(s.admitted)
		}
	} else {
		t.Queued = now.Sub(s.submitted)
	}
	if t.Prefill > 0 {
		t.PrefillTokensPerSec = float64(s.prefillComputed) / t.Prefill.Seconds()
	}
	if t.Decode > 0 && s.generated > 1 {
		t.DecodeTokensPerSec = float64(s.generated-1) / t.Decode.Seconds()
	}
	switch res.Finish {
	case FinishCancelled:
		e.stats.cancelled.Add(1)
	case FinishError:
		e.stats.failed.Add(1)
		e.log.Warn().Str("req", s.id).Err(res.Err).Msg("request failed")
	}
	if ready, _ := s.edgeState(); ready {
		release(s.sampler)
		release(s.detok)
		if s.ownEdge != nil {
			s.ownEdge.Close()
		}
	} else if s.edgeOpen {
		// Still opening (or failed): close what it opens once it is done.
		go func(s *session) {
			<-s.edgeReady
			if s.ownEdge != nil {
				s.ownEdge.Close()
			}
		}(s)
	}
	out := s.out
	s.out = nil
	e.publish() // the caller sees up-to-date stats once it has the result
	select {
	case out <- Event{Kind: EventDone, Text: tail, Result: res}:
	default:
		// Cannot happen: steps run only with room for two events.
		e.log.Error().Str("req", s.id).Msg("stream full at finish; final event dropped")
	}
	close(out)
	e.log.Debug().Str("req", s.id).Str("finish", res.Finish).Int("generated", s.generated).Msg("finished")
}

// shutdown ends every request when the engine closes.
func (e *Engine) shutdown() {
	e.drain()
	for _, s := range e.pending {
		e.queued.Add(-1)
		e.finish(s, &Result{Finish: FinishError, Err: ErrClosed}, "")
	}
	for _, s := range e.active {
		e.finish(s, &Result{Finish: FinishError, Err: ErrClosed}, "")
	}
	e.pending, e.active = nil, nil
	e.publish()
}
