// Package edge implements the edge module's functions behind its ABI
// (wasm/ABI.md): sessions holding a tokenizer, tokenization, streaming
// detokenization, chat encoding, sampling and Engram addressing. It is a
// plain Go package: wasm/cmd/edge-wasip1 and wasm/cmd/edge-js export it
// from WebAssembly, and native code (tests, benchmarks) may call it
// directly.
//
// Every function takes a msgpack request and returns a status-prefixed
// msgpack response (see Call); bad input yields an error response, never a
// panic.
package edge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/engram"
	"github.com/edgeseek/edgeseek/wasm/sampler"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// MaxHandles bounds the live objects of one Edge.
const MaxHandles = 1 << 16

// ErrHandle reports an unknown, released or wrongly typed handle.
var ErrHandle = errors.New("bad handle")

// ErrUnsupported reports a function this build of the edge does not
// implement.
var ErrUnsupported = errors.New("unsupported function")

// session is a loaded tokenizer and its configuration.
type session struct {
	tok        *tokenizer.Tokenizer
	engram     *protocol.EngramConfig
	engramAddr *engram.Addresser
}

// stream is a streaming detokenizer.
type stream struct {
	s *tokenizer.Stream
}

// samplerObj is one request's sampler.
type samplerObj struct {
	s       *sampler.Sampler
	logits  []float32
	f16     []uint16
	history []int
}

// Edge holds the objects of one module instance. It is not safe for
// concurrent use (a WebAssembly instance is single-threaded anyway).
type Edge struct {
	next Handle
	objs map[protocol.Handle]any
}

// Handle is an alias of protocol.Handle for callers of this package.
type Handle = protocol.Handle

// New returns an Edge with no objects.
func New() *Edge {
	return &Edge{objs: map[protocol.Handle]any{}}
}

func (e *Edge) put(v any) (Handle, error) {
	if len(e.objs) >= MaxHandles {
		return 0, fmt.Errorf("edge: %d live handles, release some first", MaxHandles)
	}
	for {
		e.next++
		if e.next != 0 && e.objs[e.next] == nil {
			break
		}
	}
	e.objs[e.next] = v
	return e.next, nil
}

func get[T any](e *Edge, h Handle, what string) (T, error) {
	v, ok := e.objs[h].(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("edge: handle %d is not a live %s: %w", h, what, ErrHandle)
	}
	return v, nil
}

// Live returns the number of live handles.
func (e *Edge) Live() int { return len(e.objs) }

// SessionNew loads a tokenizer and returns a session handle.
func (e *Edge) SessionNew(r *protocol.SessionNew) (*protocol.SessionInfo, error) {
	tok, err := tokenizer.Load(r.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("edge: session_new: %w", err)
	}
	if r.Engram != nil {
		if err := checkEngram(r.Engram); err != nil {
			return nil, fmt.Errorf("edge: session_new: %w", err)
		}
	}
	h, err := e.put(&session{tok: tok, engram: r.Engram})
	if err != nil {
		return nil, err
	}
	return &protocol.SessionInfo{Handle: h, Vocab: uint32(tok.VocabSize())}, nil
}

// Tokenize encodes text with a session's tokenizer (no special tokens added).
func (e *Edge) Tokenize(r *protocol.TextRequest) (*protocol.IDsReply, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	ids, err := s.tok.Encode(r.Text)
	if err != nil {
		return nil, fmt.Errorf("edge: tokenize: %w", err)
	}
	return &protocol.IDsReply{IDs: toInt32(ids)}, nil
}

// TokenizerImage returns a session's tokenizer as an image (see
// tokenizer.AppendImage), for a tokenizer module chained in front of this
// edge (protocol.FnTokenizerAttach).
func (e *Edge) TokenizerImage(r *protocol.HandleRequest) (*protocol.TokenizerImage, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	return &protocol.TokenizerImage{Image: s.tok.AppendImage(nil)}, nil
}

// Detokenize decodes ids with a session's tokenizer.
func (e *Edge) Detokenize(r *protocol.IDsRequest) (*protocol.TextReply, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	text, err := s.tok.Decode(toInt(r.IDs), r.SkipSpecial)
	if err != nil {
		return nil, fmt.Errorf("edge: detokenize: %w", err)
	}
	return &protocol.TextReply{Text: text}, nil
}

// StreamNew starts a streaming detokenizer on a session. The request's
// SkipSpecial drops special tokens.
func (e *Edge) StreamNew(r *protocol.IDsRequest) (*protocol.HandleReply, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	st := tokenizer.NewStream(s.tok)
	st.SkipSpecial(r.SkipSpecial)
	h, err := e.put(&stream{s: st})
	if err != nil {
		return nil, err
	}
	return &protocol.HandleReply{Handle: h}, nil
}

// StreamPush adds ids to a stream and returns the text completed so far:
// whole UTF-8 characters only.
func (e *Edge) StreamPush(r *protocol.IDsRequest) (*protocol.TextReply, error) {
	st, err := get[*stream](e, r.Handle, "stream")
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, id := range r.IDs {
		piece, err := st.s.Push(int(id))
		if err != nil {
			return nil, fmt.Errorf("edge: stream_push: %w", err)
		}
		out = append(out, piece...)
	}
	return &protocol.TextReply{Text: string(out)}, nil
}

// StreamFlush returns what a stream still holds (an incomplete trailing
// character becomes U+FFFD).
func (e *Edge) StreamFlush(r *protocol.HandleRequest) (*protocol.TextReply, error) {
	st, err := get[*stream](e, r.Handle, "stream")
	if err != nil {
		return nil, err
	}
	return &protocol.TextReply{Text: st.s.Flush()}, nil
}

// SamplerNew creates a sampler seeded by its parameters.
func (e *Edge) SamplerNew(r *protocol.SamplerNew) (*protocol.HandleReply, error) {
	p := r.Params
	sp := sampler.Params{
		Temperature:       p.Temperature,
		TopK:              int(p.TopK),
		TopP:              p.TopP,
		MinP:              p.MinP,
		RepetitionPenalty: p.RepetitionPenalty,
		PresencePenalty:   p.PresencePenalty,
		FrequencyPenalty:  p.FrequencyPenalty,
		PenaltyLastN:      int(p.PenaltyLastN),
		StopTokens:        toInt(p.StopTokens),
		MaxTokens:         int(p.MaxTokens),
		Seed:              p.Seed,
		LogProbs:          p.LogProbs,
		TopLogProbs:       int(p.TopLogProbs),
	}
	if len(p.LogitBias) > 0 {
		sp.LogitBias = make(map[int]float32, len(p.LogitBias))
		for id, b := range p.LogitBias {
			sp.LogitBias[int(id)] = b
		}
	}
	s, err := sampler.New(sp)
	if err != nil {
		return nil, fmt.Errorf("edge: sampler_new: %w", err)
	}
	h, err := e.put(&samplerObj{s: s})
	if err != nil {
		return nil, err
	}
	return &protocol.HandleReply{Handle: h}, nil
}

// Sample draws one token from a sampler.
func (e *Edge) Sample(r *protocol.SampleRequest) (*protocol.SampleReply, error) {
	so, err := get[*samplerObj](e, r.Handle, "sampler")
	if err != nil {
		return nil, err
	}
	so.history = so.history[:0]
	for _, id := range r.History {
		so.history = append(so.history, int(id))
	}
	var c sampler.Choice
	if len(r.F16) > 0 {
		n := len(r.F16) / 2
		so.f16 = grow(so.f16, n)
		for i := range so.f16 {
			so.f16[i] = binary.LittleEndian.Uint16(r.F16[2*i:])
		}
		c, err = so.s.SampleFloat16(so.f16, so.history)
	} else {
		c, err = so.s.Sample(so.f32Logits(r.F32), so.history)
	}
	if err != nil {
		return nil, fmt.Errorf("edge: sample: %w", err)
	}
	rep := &protocol.SampleReply{ID: int32(c.ID), LogProb: c.LogProb, Finish: c.Finish.String()}
	for _, a := range c.Top {
		rep.Top = append(rep.Top, protocol.Alt{ID: int32(a.ID), LogProb: a.LogProb})
	}
	return rep, nil
}

// f32Logits returns the little-endian float32 logits in b. On
// little-endian targets (WebAssembly, amd64, arm64) an aligned b is used in
// place, without a conversion pass (the sampler does not modify its input,
// and b lives until the call returns); otherwise they are copied into a
// reused aligned buffer.
func (so *samplerObj) f32Logits(b []byte) []float32 {
	n := len(b) / 4
	if n > 0 && littleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n)
	}
	so.logits = grow(so.logits, n)
	if n > 0 && littleEndian {
		// One copy (memory.copy in WebAssembly) into the aligned buffer:
		// the request usually holds the logits at an unaligned offset.
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(so.logits))), 4*n), b)
		return so.logits
	}
	for i := range so.logits {
		so.logits[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return so.logits
}

// littleEndian reports whether the target stores integers little-endian.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Release frees any object.
func (e *Edge) Release(r *protocol.HandleRequest) (*protocol.Empty, error) {
	if _, ok := e.objs[r.Handle]; !ok {
		return nil, fmt.Errorf("edge: release: handle %d: %w", r.Handle, ErrHandle)
	}
	delete(e.objs, r.Handle)
	return &protocol.Empty{}, nil
}

// EncodeF32 converts logits to the little-endian bytes of
// protocol.SampleRequest.F32.
func EncodeF32(logits []float32) []byte {
	b := make([]byte, 4*len(logits))
	for i, f := range logits {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func toInt(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}
