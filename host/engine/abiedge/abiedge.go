// Package abiedge implements engine.Edge on top of an edge module reached
// through the edge ABI (wasm/ABI.md): the wazero-hosted WebAssembly module
// (*edgehost.Instance or *edgehost.Chain) or the same Go code called
// natively. Calls to one module instance are serialized.
package abiedge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/protocol"
)

// Invoker calls one ABI function with a msgpack request and decodes the
// reply; *edgehost.Instance and *edgehost.Chain implement it.
type Invoker interface {
	Invoke(ctx context.Context, fn string, req, rep any) error
}

// Conn is a module instance the Edge owns: an Invoker it closes when done.
// *edgehost.Instance and *edgehost.Chain implement it.
type Conn interface {
	Invoker
	Close(ctx context.Context) error
}

// Spawn starts a new prepared module instance: one in which the tokenizer
// session of the template (OpenSession) is already open under the same
// handle. edgehost.Template.Instantiate is the usual one.
type Spawn func(ctx context.Context) (Conn, error)

// FromTemplate is the Spawn of an edgehost.Template: each call starts an
// instance from the template's snapshot. With plugin templates (a sampler,
// see SamplerTemplate; a tokenizer, see TokenizerTemplate), each call also
// starts an instance of each and returns them, in order, in front of the
// template's instance as an edgehost.Chain: sampling goes to the sampler
// module, tokenizing to the tokenizer module, everything else to the
// template's instance. Nil plugins are skipped.
func FromTemplate(t *edgehost.Template, plugins ...*edgehost.Template) Spawn {
	return func(ctx context.Context) (Conn, error) {
		in, err := t.Instantiate(ctx)
		if err != nil {
			return nil, err // not a typed nil in an interface
		}
		var insts []*edgehost.Instance
		for _, p := range plugins {
			if p == nil {
				continue
			}
			pin, err := p.Instantiate(ctx)
			if err != nil {
				for _, o := range insts {
					o.Close(ctx)
				}
				in.Close(ctx)
				return nil, fmt.Errorf("plugin module %s: %w", p.Module().Name(), err)
			}
			insts = append(insts, pin)
		}
		if len(insts) == 0 {
			return in, nil
		}
		return edgehost.NewChain(append(insts, in)...), nil
	}
}

// TokenizerTemplate prepares instances of a tokenizer module (see
// edgehost.Runtime.CompileTokenizer) that tokenize for session of the edge
// template whose instance edge is: the template's instance is given the
// session's tokenizer image (edge_tokenizer_attach) before its snapshot,
// so each instance starts attached and serves edge_tokenize for session in
// a chain with an instance of the edge template (FromTemplate).
func TokenizerTemplate(ctx context.Context, m *edgehost.Module, edge *edgehost.Instance, session protocol.Handle) (*edgehost.Template, error) {
	img, err := edgehost.TokenizerImage(ctx, edge, session)
	if err != nil {
		return nil, err
	}
	t, first, err := m.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) error {
		if err := in.Invoke(ctx, protocol.FnTokenizerAttach, &protocol.TokenizerAttach{Handle: session, Image: img}, &protocol.Empty{}); err != nil {
			return fmt.Errorf("tokenizer module: %s: %w", protocol.FnTokenizerAttach, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	first.Close(ctx)
	return t, nil
}

// SamplerTemplate prepares instances of a sampler module (see
// edgehost.Runtime.CompileSampler) for a vocabulary of vocab tokens: the
// template's instance samples once with top-p, log-probabilities, a
// penalty, a bias and a history, so that the module has grown its scratch
// memory for such a vocabulary before the snapshot is taken. Its instances
// then start with that memory (and, with KeepSpares, reuse resident pages):
// a fresh instance's first step cost 6–15 ms against 1 ms for the next.
//
// A third-party module may refuse some of those parameters: then the
// template is made without the warm-up (its instances grow on first use).
func SamplerTemplate(ctx context.Context, m *edgehost.Module, vocab int) (*edgehost.Template, error) {
	t, first, err := m.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) error {
		var h protocol.HandleReply
		params := protocol.SamplingParams{Temperature: 0.8, TopP: 0.9, MinP: 0.01, RepetitionPenalty: 1.1, PresencePenalty: 0.1,
			LogProbs: true, TopLogProbs: 20, LogitBias: map[int32]float32{0: -1}, Seed: 1}
		if err := in.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: params}, &h); err != nil {
			return fmt.Errorf("sampler warm-up: %w", err)
		}
		logits := make([]float32, vocab)
		req := protocol.AppendSampleRequestF32(nil, h.Handle, logits, []int32{0, 1, 2})
		if err := in.Invoke(ctx, protocol.FnSample, protocol.Raw(req), &protocol.SampleReply{}); err != nil {
			return fmt.Errorf("sampler warm-up: %w", err)
		}
		if !in.Has(protocol.FnRelease) {
			return nil
		}
		return in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h.Handle}, &protocol.Empty{})
	})
	if err != nil {
		if t, first, err = m.NewTemplate(ctx, nil); err != nil {
			return nil, err
		}
	}
	first.Close(ctx)
	return t, nil
}

// Edge is an engine.Edge backed by one edge module session.
//
// An Edge made by NewSpawning gives each request its own module instance
// (engine.SessionEdges), so a module that traps or runs out of memory ends
// that request only, and requests sample in parallel; its own instance,
// used for tokenizing prompts, is replaced by a fresh one after a failure.
type Edge struct {
	timeout time.Duration
	session protocol.Handle
	// splitChat: another module than the one that renders chats tokenizes
	// (a tokenizer plugin): EncodeChat asks for the text, then tokenizes it.
	splitChat bool
	vocab     int
	texts     *sync.Map // token id → raw text, shared by an Edge and its sessions
	spawn     Spawn     // replaces the Edge's own instance after a failure; nil: none
	// requestSpawn starts each request's instance (NewSessionEdge); nil:
	// one instance for everything.
	requestSpawn Spawn

	mu     sync.Mutex // one call at a time into the instance
	inv    Invoker
	conn   Conn // inv when the Edge owns it
	broken bool // conn failed: spawn a new one before the next call
}

// New opens a tokenizer session (edge_session_new) in the module behind
// inv. timeout bounds each call (0: 10 s).
func New(ctx context.Context, inv Invoker, tokenizerJSON []byte, timeout time.Duration) (*Edge, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	info, err := OpenSession(ctx, inv, tokenizerJSON, timeout)
	if err != nil {
		return nil, err
	}
	return &Edge{inv: inv, timeout: timeout, session: info.Handle, vocab: int(info.Vocab), texts: &sync.Map{}, splitChat: tokenizesElsewhere(inv)}, nil
}

// OpenSession opens a tokenizer session (edge_session_new) in the module
// behind inv: the setup of an edgehost.Template whose instances NewSpawning
// uses. timeout bounds the call (0: 10 s).
func OpenSession(ctx context.Context, inv Invoker, tokenizerJSON []byte, timeout time.Duration) (protocol.SessionInfo, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var info protocol.SessionInfo
	if err := inv.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tokenizerJSON}, &info); err != nil {
		return info, fmt.Errorf("edge %s: %w", protocol.FnSessionNew, err)
	}
	return info, nil
}

// NewSpawning returns an Edge whose instances come from spawn, each holding
// the tokenizer session info (see OpenSession). timeout bounds each call
// (0: 10 s).
func NewSpawning(ctx context.Context, spawn Spawn, info protocol.SessionInfo, timeout time.Duration) (*Edge, error) {
	return NewSpawningFor(ctx, spawn, spawn, info, timeout)
}

// NewSpawningFor is NewSpawning with different instances for the Edge's
// own work and for requests: its own instance (prompts and chats encoded
// for every request, token texts; replaced after a failure) comes from
// own, each request's (NewSessionEdge: sampling and streaming
// detokenization) from perRequest. The host gives only own a tokenizer
// plugin and only perRequest a sampler plugin: a request's instances never
// tokenize, and the shared one never samples.
func NewSpawningFor(ctx context.Context, own, perRequest Spawn, info protocol.SessionInfo, timeout time.Duration) (*Edge, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	conn, err := own(ctx)
	if err != nil {
		return nil, fmt.Errorf("edge instance: %w", err)
	}
	return &Edge{inv: conn, conn: conn, spawn: own, requestSpawn: perRequest, timeout: timeout, session: info.Handle, vocab: int(info.Vocab),
		texts: &sync.Map{}, splitChat: tokenizesElsewhere(conn)}, nil
}

// tokenizesElsewhere reports whether edge_tokenize and edge_chat_encode go
// to different instances of inv.
func tokenizesElsewhere(inv Invoker) bool {
	c, ok := inv.(*edgehost.Chain)
	return ok && c.Owner(protocol.FnTokenize) != c.Owner(protocol.FnChatEncode)
}

// NewSessionEdge implements engine.SessionEdges: an Edge on a new instance
// of its own, for one request, closed by Close. An Edge made by New has no
// instances to give and returns a view of itself whose Close does nothing.
func (e *Edge) NewSessionEdge(ctx context.Context) (engine.SessionEdge, error) {
	if e.requestSpawn == nil {
		return sharedSession{e}, nil
	}
	conn, err := e.requestSpawn(ctx)
	if err != nil {
		return nil, fmt.Errorf("edge instance: %w", err)
	}
	return &Edge{inv: conn, conn: conn, timeout: e.timeout, session: e.session, vocab: e.vocab, texts: e.texts, splitChat: tokenizesElsewhere(conn)}, nil
}

// sharedSession is a request's view of an Edge with a single instance.
type sharedSession struct{ *Edge }

func (sharedSession) Close() {}

// Close closes the instance the Edge owns, if any.
func (e *Edge) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		e.conn.Close(context.Background())
		e.conn, e.inv, e.broken = nil, nil, true
	}
}

// Vocab is the tokenizer's vocabulary size.
func (e *Edge) Vocab() int { return e.vocab }

func (e *Edge) call(ctx context.Context, fn string, req, rep any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken {
		if e.spawn == nil {
			return fmt.Errorf("edge %s: %w", fn, errClosed)
		}
		conn, err := e.spawn(ctx)
		if err != nil {
			return fmt.Errorf("edge %s: new instance: %w", fn, err)
		}
		e.inv, e.conn, e.broken = conn, conn, false
	}
	if err := e.inv.Invoke(ctx, fn, req, rep); err != nil {
		if e.spawn != nil && errors.Is(err, edgehost.ErrModuleFailed) {
			e.conn.Close(context.Background())
			e.broken = true
		}
		return fmt.Errorf("edge %s: %w", fn, err)
	}
	return nil
}

var errClosed = errors.New("edge instance closed")

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}

func int32s(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// Encode implements engine.Edge (edge_tokenize).
func (e *Edge) Encode(text string) ([]int, error) {
	var rep protocol.IDsReply
	if err := e.call(nil, protocol.FnTokenize, &protocol.TextRequest{Handle: e.session, Text: text}, &rep); err != nil {
		return nil, err
	}
	return ints(rep.IDs), nil
}

// EncodeChat implements engine.Edge (edge_chat_encode with tokenize; with
// a tokenizer plugin in the chain, edge_chat_encode for the text and
// edge_tokenize for its ids, which is what the edge's tokenize does).
func (e *Edge) EncodeChat(msgs []engine.Message, opt engine.ChatOptions) ([]int, error) {
	req := &protocol.ChatRequest{Handle: e.session, Tokenize: !e.splitChat,
		Options: protocol.ChatOptions{Thinking: opt.Thinking}}
	for _, m := range msgs {
		req.Messages = append(req.Messages, protocol.ChatMessage{Role: m.Role, Content: m.Content})
	}
	var rep protocol.ChatReply
	if err := e.call(nil, protocol.FnChatEncode, req, &rep); err != nil {
		return nil, err
	}
	if e.splitChat {
		return e.Encode(rep.Text)
	}
	return ints(rep.IDs), nil
}

// TokenText implements engine.Edge (edge_detokenize of one id, cached).
func (e *Edge) TokenText(id int) string {
	if v, ok := e.texts.Load(id); ok {
		return v.(string)
	}
	var rep protocol.TextReply
	if err := e.call(nil, protocol.FnDetokenize, &protocol.IDsRequest{Handle: e.session, IDs: []int32{int32(id)}}, &rep); err != nil {
		return ""
	}
	e.texts.Store(id, rep.Text)
	return rep.Text
}

// NewDetok implements engine.Edge (edge_stream_new). If the module fails,
// the detokenizer reports the error on its first Push.
func (e *Edge) NewDetok() engine.Detok {
	var rep protocol.HandleReply
	err := e.call(nil, protocol.FnStreamNew, &protocol.IDsRequest{Handle: e.session}, &rep)
	return &detok{e: e, h: rep.Handle, err: err}
}

type detok struct {
	e   *Edge
	h   protocol.Handle
	err error
}

// Push implements engine.Detok.
func (d *detok) Push(id int) (string, error) {
	if d.err != nil {
		return "", d.err
	}
	var rep protocol.TextReply
	if err := d.e.call(nil, protocol.FnStreamPush, &protocol.IDsRequest{Handle: d.h, IDs: []int32{int32(id)}}, &rep); err != nil {
		return "", err
	}
	return rep.Text, nil
}

// Flush implements engine.Detok.
func (d *detok) Flush() string {
	if d.err != nil {
		return ""
	}
	var rep protocol.TextReply
	if err := d.e.call(nil, protocol.FnStreamFlush, &protocol.HandleRequest{Handle: d.h}, &rep); err != nil {
		return ""
	}
	return rep.Text
}

// Release frees the stream inside the module; the engine calls it when
// the request ends.
func (d *detok) Release() { d.e.release(protocol.FnStreamNew, d.h) }

// release frees handle h, made by function createdBy. In a chain, handles
// of different modules may have the same number: the chain releases it in
// the module that made it.
func (e *Edge) release(createdBy string, h protocol.Handle) {
	if h == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken || e.inv == nil {
		return // the instance that held it is gone
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	if c, ok := e.inv.(*edgehost.Chain); ok {
		c.Release(ctx, createdBy, h)
		return
	}
	e.inv.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h}, &protocol.Empty{})
}

// NewSampler implements engine.Edge (edge_sampler_new).
func (e *Edge) NewSampler(p engine.SamplerParams) (engine.Sampler, error) {
	sp := protocol.SamplingParams{Temperature: p.Temperature, TopK: int32(p.TopK), TopP: p.TopP, MinP: p.MinP,
		RepetitionPenalty: p.RepetitionPenalty, PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty,
		Seed: p.Seed, LogProbs: p.LogProbs, TopLogProbs: int32(p.TopLogProbs)}
	for id, b := range p.LogitBias {
		if sp.LogitBias == nil {
			sp.LogitBias = map[int32]float32{}
		}
		sp.LogitBias[int32(id)] = b
	}
	var rep protocol.HandleReply
	if err := e.call(nil, protocol.FnSamplerNew, &protocol.SamplerNew{Params: sp}, &rep); err != nil {
		return nil, err
	}
	// The history only matters to the penalties: without them it is not
	// sent (it grows by one token per step).
	penalized := (p.RepetitionPenalty != 0 && p.RepetitionPenalty != 1) || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
	return &sampler{e: e, h: rep.Handle, history: penalized}, nil
}

type sampler struct {
	e       *Edge
	h       protocol.Handle
	history bool // send the history (penalties)
	buf     []byte
}

// Sample implements engine.Sampler (edge_sample with float32 logits). The
// request is encoded directly into a buffer the sampler keeps (the logits
// are most of a step's bytes), not through the msgpack library.
func (s *sampler) Sample(logits []float32, history []int) (engine.Choice, error) {
	var hist []int32
	if s.history {
		hist = int32s(history)
	}
	s.buf = protocol.AppendSampleRequestF32(s.buf[:0], s.h, logits, hist)
	var rep protocol.SampleReply
	if err := s.e.call(nil, protocol.FnSample, protocol.Raw(s.buf), &rep); err != nil {
		return engine.Choice{}, err
	}
	c := engine.Choice{ID: int(rep.ID), LogProb: rep.LogProb}
	for _, a := range rep.Top {
		c.Top = append(c.Top, engine.Alt{ID: int(a.ID), LogProb: a.LogProb})
	}
	return c, nil
}

// Release frees the sampler inside the module.
func (s *sampler) Release() { s.e.release(protocol.FnSamplerNew, s.h) }
